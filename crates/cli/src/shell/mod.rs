//! `ferry shell ADDR [-b FILE]`: an sftp-like session over ferry/1.
//!
//! - On a terminal: a line editor (rustyline) with history kept in
//!   `$XDG_STATE_HOME/ferry/history` (or `~/.local/state/ferry/history`), tab completion of
//!   commands, server file names (from the last listing) and local paths; Ctrl-C cancels the
//!   running transfer and the session goes on (on a new connection), Ctrl-C at the prompt
//!   clears the line, Ctrl-D leaves.
//! - In a batch (`-b FILE`, `-b -` for stdin, or commands piped in): each command is echoed
//!   after `ferry> `, the first failing command stops the shell with its exit code, a line
//!   starting with `-` may fail.
//!
//! [`command`] parses lines, [`complete`] completes them, [`session`] runs requests (and
//! reconnects), [`local`] runs the local commands.

mod command;
mod complete;
mod local;
mod session;

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use ferry_sync::client::{
    ClientError, GetOptions, PutOptions, local_path, name_for_local, part_path, visible,
};
use ferry_wire::{Code, FileName, PutMode};

use crate::ClientArgs;
use crate::addr::ServerAddr;
use crate::commands::{print_listing, report, warn_skipped};
use crate::exit::{self, Worst};
use crate::progress::Bars;
use command::Command;
use complete::RemoteNames;
use session::{Canceller, Failed, Session};

/// Where a batch's commands come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Standard input (`-b -`, or stdin is not a terminal).
    Stdin,
    /// A file (`-b FILE`).
    File(PathBuf),
}

/// Runs the shell; returns the exit code.
pub(crate) fn run(how: ClientArgs, addr: &ServerAddr, batch: Option<&Path>) -> u8 {
    let engine = how.implementation;
    let options = match crate::commands::options(&how, addr) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ferry: {e}");
            return exit::USAGE;
        }
    };
    let batch = match batch {
        Some(p) if p == Path::new("-") => Some(Batch::Stdin),
        Some(p) => Some(Batch::File(p.to_owned())),
        None if !io::stdin().is_terminal() => Some(Batch::Stdin),
        None => None,
    };
    // A batch file that cannot be read is found before connecting.
    let input: Option<Box<dyn BufRead>> = match &batch {
        Some(Batch::File(p)) => match File::open(p) {
            Ok(f) => Some(Box::new(BufReader::new(f))),
            Err(e) => {
                eprintln!("ferry: cannot read the batch file {}: {e}", p.display());
                return exit::LOCAL_IO;
            }
        },
        Some(Batch::Stdin) => Some(Box::new(io::stdin().lock())),
        None => None,
    };
    let cancel = Canceller::default();
    let session = match Session::connect(engine, addr, options, cancel.clone()) {
        Ok(s) => s,
        Err(e) => {
            report(&format!("cannot start a session with {addr}"), &e);
            return exit::for_error(&e);
        }
    };
    let shell = Shell {
        session,
        remote: RemoteNames::default(),
        interactive: input.is_none(),
        script_on_stdin: batch == Some(Batch::Stdin),
    };
    match input {
        Some(input) => shell.batch(input),
        None => shell.interactive(cancel),
    }
}

/// What to do after a command.
enum Flow {
    /// Go on; `Err(code)` if the command failed.
    Next(Result<(), u8>),
    /// `close` (or an equivalent).
    Close,
}

struct Shell {
    session: Session,
    /// The server's names as last listed, for completion.
    remote: RemoteNames,
    interactive: bool,
    /// The commands come from stdin (a `!COMMAND` must not read it).
    script_on_stdin: bool,
}

impl Shell {
    /// Runs the commands of `input` (a batch): echoes each, stops at the first failure of a
    /// line not marked with `-`.
    fn batch(mut self, input: Box<dyn BufRead>) -> u8 {
        for (n, line) in input.lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("ferry: reading commands: {e}");
                    self.finish(false);
                    return exit::LOCAL_IO;
                }
            };
            let shown = line.trim();
            if shown.is_empty() || shown.starts_with('#') {
                continue;
            }
            println!("ferry> {shown}");
            let (may_fail, text) = match shown.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, shown),
            };
            match self.execute(text) {
                Flow::Close => break,
                Flow::Next(Ok(())) => {}
                Flow::Next(Err(_)) if may_fail => {}
                Flow::Next(Err(code)) => {
                    eprintln!(
                        "ferry: stopped at line {}: the command failed (a line starting with - may fail)",
                        n + 1
                    );
                    self.finish(false);
                    return code;
                }
            }
        }
        self.finish(true);
        exit::OK
    }

    /// The interactive loop on a terminal.
    fn interactive(mut self, cancel: Canceller) -> u8 {
        use rustyline::error::ReadlineError;
        let config = rustyline::Config::builder()
            .max_history_size(1000)
            .and_then(|b| b.history_ignore_dups(true))
            .map(|b| {
                b.history_ignore_space(true)
                    .auto_add_history(false)
                    .completion_type(rustyline::CompletionType::List)
                    .build()
            });
        let editor = config.and_then(rustyline::Editor::with_config);
        let mut editor: rustyline::Editor<complete::Helper, rustyline::history::FileHistory> =
            match editor {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("ferry: no line editing on this terminal ({e}); reading plain lines");
                    return self.plain_interactive();
                }
            };
        editor.set_helper(Some(complete::Helper {
            remote: Arc::clone(&self.remote),
        }));
        let history = history_path();
        if let Some(h) = &history
            && let Err(e) = editor.load_history(h)
        {
            tracing::debug!("history {}: {e}", h.display());
        }
        #[cfg(unix)]
        let _signals = match SigintThread::start(cancel) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("ferry: warning: Ctrl-C will end ferry (cannot handle it: {e})");
                None
            }
        };
        #[cfg(not(unix))]
        drop(cancel);
        eprintln!(
            "connected to {}; type help for the commands, Tab completes",
            self.session.addr()
        );
        self.refresh_names();
        loop {
            match editor.readline("ferry> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                        if let Some(h) = &history {
                            save_history(&mut editor, h);
                        }
                    }
                    if let Flow::Close = self.execute(&line) {
                        break;
                    }
                }
                // Like sftp: Ctrl-C at the prompt drops the line and prompts again.
                Err(ReadlineError::Interrupted) => {}
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("ferry: reading commands: {e}");
                    break;
                }
            }
        }
        self.finish(true);
        exit::OK
    }

    /// Interactive without line editing (the editor could not start): plain lines, errors
    /// do not stop the session.
    fn plain_interactive(mut self) -> u8 {
        let mut line = String::new();
        loop {
            print!("ferry> ");
            let _ = io::stdout().flush();
            line.clear();
            match io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Flow::Close = self.execute(&line) {
                        break;
                    }
                }
            }
        }
        self.finish(true);
        exit::OK
    }

    /// Ends the session; `bye` on stdout when the script or the user ended it.
    fn finish(self, say_bye: bool) {
        match self.session.close() {
            Ok(()) if say_bye => println!("bye"),
            Ok(()) => {}
            Err(e) => tracing::debug!("close: {e}"),
        }
    }

    /// Runs one command line.
    fn execute(&mut self, line: &str) -> Flow {
        let command = match command::parse(line) {
            Ok(c) => c,
            Err(usage) => {
                eprintln!("{}", usage.0);
                return Flow::Next(Err(exit::USAGE));
            }
        };
        let result = match command {
            Command::Nothing => Ok(()),
            Command::Help => {
                println!("{}", command::help());
                Ok(())
            }
            Command::Close => return Flow::Close,
            Command::Dir(patterns) => self.dir(&patterns),
            Command::Get { name, resume } => self.get(&name, resume),
            Command::Mget(patterns) => self.mget(&patterns),
            Command::Put { file, mode } => self.put(&file, mode),
            Command::Mput { patterns, mode } => self.mput(&patterns, mode),
            Command::Lcd(dir) => local::lcd(dir.as_deref()),
            Command::Lls(dir) => local::lls(dir.as_deref()),
            Command::Lpwd => local::lpwd(),
            Command::Local(cmd) => local::run(cmd.as_deref(), self.script_on_stdin),
            Command::Tree(t) => self.tree(t),
        };
        let _ = io::stdout().flush();
        Flow::Next(result)
    }

    /// A command of the `tree` extension, run by the same code as the one-shot commands.
    fn tree(&mut self, t: command::TreeCommand) -> Result<(), u8> {
        use command::TreeCommand as T;
        let addr = self.session.addr().clone();
        let timeout = self.session.timeout();
        let what = match &t {
            T::List { .. } => "list",
            T::Mkdir { .. } => "mkdir",
            T::Rmdir(_) => "rmdir",
            T::Rm { .. } => "rm",
            T::Mv(..) => "mv",
            T::Rget(_) => "rget",
            T::Rput { .. } => "rput",
            T::Mirror { .. } => "mirror",
        };
        let ran = self.session.with(|client| {
            let ctx = crate::tree::Ctx {
                addr: &addr,
                timeout,
            };
            if !ferry_wire::tree::offered(client.greeting()) {
                return ctx.fail(what, &crate::tree::not_offered());
            }
            match t {
                T::List {
                    folder,
                    recursive,
                    digests,
                } => {
                    let options = ferry_wire::tree::ListOptions { digests, recursive };
                    crate::tree::ls(client, &ctx, folder, options, false, &mut io::stdout())
                }
                T::Mkdir { paths, parents } => crate::tree::mkdir(client, &ctx, &paths, parents),
                T::Rmdir(paths) => crate::tree::rmdir(client, &ctx, &paths),
                T::Rm { paths, recursive } => crate::tree::rm(client, &ctx, &paths, recursive),
                T::Mv(from, to) => crate::tree::mv(client, &ctx, &from, &to),
                T::Rget(folder) => {
                    crate::tree::get_recursive(client, &ctx, &folder, Path::new("."), false)
                }
                T::Rput { dir, remote } => {
                    crate::tree::put_recursive(client, &ctx, Path::new(&dir), remote, false)
                }
                T::Mirror {
                    direction,
                    dir,
                    remote,
                    delete,
                    dry_run,
                } => crate::tree::mirror(
                    client,
                    &ctx,
                    direction,
                    Path::new(&dir),
                    remote,
                    delete,
                    dry_run,
                ),
            }
        });
        match ran {
            Ok(exit::OK) => Ok(()),
            Ok(code) => Err(code),
            Err(f) => Err(self.failed(what, &f)),
        }
    }

    /// Reports a failed request; returns its exit code. A session that ended is dropped
    /// (the next command opens a new one).
    fn failed(&mut self, what: &str, f: &Failed) -> u8 {
        match f {
            Failed::Cancelled {
                reconnect_error: None,
            } => {
                eprintln!(
                    "{what}: cancelled; reconnected to {} (ferry/1 ends the session of a cancelled transfer)",
                    self.session.addr()
                );
                exit::CONNECTION
            }
            Failed::Cancelled {
                reconnect_error: Some(e),
            } => {
                eprintln!(
                    "{what}: cancelled; cannot reconnect to {} now: {e} (the next command tries again)",
                    self.session.addr()
                );
                exit::CONNECTION
            }
            Failed::Client(e) => {
                self.show(what, e);
                exit::for_error(e)
            }
        }
    }

    /// Shows one error; notes when it ended the session.
    fn show(&mut self, what: &str, e: &ClientError) {
        eprintln!("error: {what}: {e}");
        if e.code() == Some(Code::EXISTS) {
            eprintln!("hint: `replace FILE` (or `mreplace`) overwrites the server's copy");
        }
        if e.ends_session() && self.session.is_open() {
            self.session.drop_session();
        }
        if e.ends_session() && self.interactive {
            eprintln!("ferry: the session has ended; the next command opens a new one");
        }
    }

    /// Reads the listing for completion (interactive only; quietly).
    fn refresh_names(&mut self) {
        if !self.interactive {
            return;
        }
        if let Ok(listing) = self.session.dir() {
            self.set_names(&listing.entries);
        }
    }

    fn set_names(&self, entries: &[ferry_wire::Entry]) {
        *self.remote.lock().unwrap_or_else(PoisonError::into_inner) =
            entries.iter().map(|e| e.name.as_str().to_owned()).collect();
    }

    /// `dir [PATTERN...]`.
    fn dir(&mut self, patterns: &[String]) -> Result<(), u8> {
        let patterns = compile(patterns)?;
        let listing = self.session.dir().map_err(|f| self.failed("dir", &f))?;
        for s in &listing.skipped {
            warn_skipped(s);
        }
        self.set_names(&listing.entries);
        let shown: Vec<_> = listing
            .entries
            .into_iter()
            .filter(|e| patterns.is_empty() || patterns.iter().any(|p| p.matches(e.name.as_str())))
            .collect();
        if shown.is_empty() {
            println!(
                "{}",
                if patterns.is_empty() {
                    "(no files)"
                } else {
                    "(no file matches)"
                }
            );
        } else {
            let _ = print_listing(&mut io::stdout().lock(), &shown);
        }
        Ok(())
    }

    /// `get NAME` / `reget NAME`.
    fn get(&mut self, name: &str, resume: bool) -> Result<(), u8> {
        let name = FileName::from_local(name).map_err(|e| {
            eprintln!("error: {:?} is not a valid file name: {e}", visible(name));
            exit::USAGE
        })?;
        let what = format!("get {}", visible(name.as_str()));
        let dest = local_path(Path::new("."), &name).map_err(|e| {
            self.show(&what, &e);
            exit::for_error(&e)
        })?;
        let opts = GetOptions {
            resume,
            ..GetOptions::default()
        };
        let mut bars = Bars::new();
        let result = self
            .session
            .get(&name, &dest, &opts, &mut |p| bars.update(p));
        bars.end(result.is_ok());
        match result {
            Ok(report) => {
                println!(
                    "received {} ({} bytes)",
                    visible(name.as_str()),
                    report.size
                );
                Ok(())
            }
            Err(f) => {
                let code = self.failed(&what, &f);
                partial_hint(&name, &dest);
                Err(code)
            }
        }
    }

    /// `mget PATTERN...`: the matching names of a fresh listing, downloaded pipelined.
    fn mget(&mut self, patterns: &[String]) -> Result<(), u8> {
        let compiled = compile(patterns)?;
        let listing = self.session.dir().map_err(|f| self.failed("mget", &f))?;
        self.set_names(&listing.entries);
        let mut worst = Worst::default();
        let mut names: Vec<FileName> = Vec::new();
        for (text, p) in patterns.iter().zip(&compiled) {
            let before = names.len();
            let mut any = false;
            for e in &listing.entries {
                if p.matches(e.name.as_str()) {
                    any = true;
                    if !names.contains(&e.name) {
                        names.push(e.name.clone());
                    }
                }
            }
            if !any && names.len() == before {
                eprintln!(
                    "error: mget: no file on the server matches {}",
                    visible(text)
                );
                worst.add(exit::PERMANENT);
            }
        }
        if !names.is_empty() {
            let mut bars = Bars::new();
            let results =
                self.session
                    .get_many(&names, Path::new("."), &GetOptions::default(), &mut |p| {
                        bars.update(p)
                    });
            bars.end(results.is_ok());
            match results {
                Ok(results) => {
                    for (name, r) in names.iter().zip(results) {
                        match r {
                            Ok(report) => println!(
                                "received {} ({} bytes)",
                                visible(name.as_str()),
                                report.size
                            ),
                            Err(e) => {
                                self.show(&format!("get {}", visible(name.as_str())), &e);
                                worst.add(exit::for_error(&e));
                                if let Ok(dest) = local_path(Path::new("."), name) {
                                    partial_hint(name, &dest);
                                }
                            }
                        }
                    }
                }
                Err(f) => worst.add(self.failed("mget", &f)),
            }
        }
        match worst.code() {
            exit::OK => Ok(()),
            code => Err(code),
        }
    }

    /// `put FILE` / `replace FILE`.
    fn put(&mut self, file: &str, mode: PutMode) -> Result<(), u8> {
        let path = Path::new(file);
        let what = format!("put {file}");
        let name = name_for_local(path).map_err(|e| {
            self.show(&what, &e);
            exit::for_error(&e)
        })?;
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let mut bars = Bars::new();
        let result = self
            .session
            .put(path, &name, &opts, &mut |p| bars.update(p));
        bars.end(result.is_ok());
        match result {
            Ok(report) => {
                println!(
                    "sent {} ({} bytes)",
                    visible(report.name.as_str()),
                    report.size
                );
                self.refresh_names();
                Ok(())
            }
            Err(f) => Err(self.failed(&what, &f)),
        }
    }

    /// `mput PATTERN...` / `mreplace PATTERN...`: the matching local files, uploaded
    /// pipelined.
    fn mput(&mut self, patterns: &[String], mode: PutMode) -> Result<(), u8> {
        let mut worst = Worst::default();
        let mut files: Vec<(PathBuf, FileName)> = Vec::new();
        for p in patterns {
            let matched = local::glob_files(p).map_err(|e| {
                eprintln!("error: mput: {e}");
                exit::USAGE
            })?;
            if matched.is_empty() {
                eprintln!("error: mput: no local file matches {p}");
                worst.add(exit::LOCAL_IO);
            }
            for path in matched {
                if files.iter().any(|(f, _)| *f == path) {
                    continue;
                }
                match name_for_local(&path) {
                    Ok(name) => files.push((path, name)),
                    Err(e) => {
                        self.show(&format!("put {}", path.display()), &e);
                        worst.add(exit::for_error(&e));
                    }
                }
            }
        }
        if !files.is_empty() {
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            let mut bars = Bars::new();
            let results = self
                .session
                .put_many(&files, &opts, &mut |p| bars.update(p));
            bars.end(results.is_ok());
            match results {
                Ok(results) => {
                    for ((path, _), r) in files.iter().zip(results) {
                        match r {
                            Ok(report) => println!(
                                "sent {} ({} bytes)",
                                visible(report.name.as_str()),
                                report.size
                            ),
                            Err(e) => {
                                self.show(&format!("put {}", path.display()), &e);
                                worst.add(exit::for_error(&e));
                            }
                        }
                    }
                }
                Err(f) => worst.add(self.failed("mput", &f)),
            }
            self.refresh_names();
        }
        match worst.code() {
            exit::OK => Ok(()),
            code => Err(code),
        }
    }
}

/// Compiles glob patterns for server names; a bad one is a usage error.
fn compile(patterns: &[String]) -> Result<Vec<glob::Pattern>, u8> {
    patterns
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| {
                eprintln!("error: bad pattern {:?}: {e}", visible(p));
                exit::USAGE
            })
        })
        .collect()
}

/// Says where a failed download's partial data is, if it was kept.
fn partial_hint(name: &FileName, dest: &Path) {
    if let Ok(part) = part_path(dest)
        && local::has_data(&part)
    {
        eprintln!(
            "partial data kept in {}; `reget {}` resumes it",
            part.display(),
            visible(name.as_str())
        );
    }
}

/// Where the history is kept: `$XDG_STATE_HOME/ferry/history`, else
/// `~/.local/state/ferry/history` (`%LOCALAPPDATA%\ferry\history` on Windows).
fn history_path() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = if cfg!(windows) {
        absolute("LOCALAPPDATA")
    } else {
        absolute("XDG_STATE_HOME").or_else(|| local::home().map(|h| h.join(".local").join("state")))
    };
    base.map(|b| b.join("ferry").join("history"))
}

/// Appends the new history entries to `path`; a failure only costs the history.
fn save_history(
    editor: &mut rustyline::Editor<complete::Helper, rustyline::history::FileHistory>,
    path: &Path,
) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.append_history(path) {
        tracing::debug!("history {}: {e}", path.display());
    }
}

/// Ctrl-C (SIGINT) while the shell runs a command: cancels the request in flight, if any;
/// otherwise nothing (a `!COMMAND` gets its own Ctrl-C). At the prompt the line editor
/// reads Ctrl-C as a key, so this thread does not see it.
#[cfg(unix)]
struct SigintThread {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(unix)]
impl SigintThread {
    fn start(cancel: Canceller) -> io::Result<Self> {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("sigint".into())
            .spawn(move || {
                for _ in signals.forever() {
                    cancel.cancel();
                }
            })?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }
}

#[cfg(unix)]
impl Drop for SigintThread {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
