//! The shell's commands: their table (for `help` and completion) and the parsing of a line.

use ferry_wire::tree::Folder;
use ferry_wire::{PutMode, TreePath};

/// What a command's arguments name, for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Args {
    /// No arguments.
    None,
    /// One server file name: the rest of the line, spaces included.
    RemoteName,
    /// Server file names or glob patterns, separated by spaces (quote names with spaces).
    RemoteWords,
    /// One local path: the rest of the line.
    LocalPath,
    /// One local folder: the rest of the line.
    LocalDir,
    /// Local paths or glob patterns, separated by spaces.
    LocalWords,
}

/// One entry of the command table.
#[derive(Debug)]
pub(super) struct Spec {
    /// The names the command answers to (the first is the one `help` shows).
    pub names: &'static [&'static str],
    /// Its arguments, as `help` shows them.
    pub usage: &'static str,
    /// What it does.
    pub help: &'static str,
    /// What its arguments name.
    pub args: Args,
}

/// Every command, in the order `help` lists them.
pub(super) const COMMANDS: &[Spec] = &[
    Spec {
        names: &["dir", "ls"],
        usage: "[PATTERN...]",
        help: "list the files on the server (those matching a PATTERN)",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["get"],
        usage: "NAME",
        help: "download NAME into the local folder",
        args: Args::RemoteName,
    },
    Spec {
        names: &["reget"],
        usage: "NAME",
        help: "resume the download of NAME from its NAME.ferry-part",
        args: Args::RemoteName,
    },
    Spec {
        names: &["mget"],
        usage: "PATTERN...",
        help: "download every file matching a PATTERN (*, ?, [a-z]), pipelined",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["put"],
        usage: "FILE",
        help: "upload FILE (error if the server has that name)",
        args: Args::LocalPath,
    },
    Spec {
        names: &["replace"],
        usage: "FILE",
        help: "upload FILE, replacing the server's copy",
        args: Args::LocalPath,
    },
    Spec {
        names: &["mput"],
        usage: "PATTERN...",
        help: "upload every local file matching a PATTERN, pipelined",
        args: Args::LocalWords,
    },
    Spec {
        names: &["mreplace"],
        usage: "PATTERN...",
        help: "as mput, replacing the server's copies",
        args: Args::LocalWords,
    },
    Spec {
        names: &["list"],
        usage: "[-r] [--digests] [FOLDER]",
        help: "list a folder's files and folders (-r: at every depth) [tree]",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["mkdir"],
        usage: "[-p] PATH...",
        help: "make folders on the server (-p: with their parents) [tree]",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["rmdir"],
        usage: "PATH...",
        help: "remove empty folders on the server [tree]",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["rm"],
        usage: "[-r] PATH...",
        help: "delete files on the server (-r: folders with what they hold) [tree]",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["mv"],
        usage: "FROM TO",
        help: "move or rename a file or folder on the server, never replacing [tree]",
        args: Args::RemoteWords,
    },
    Spec {
        names: &["rget"],
        usage: "FOLDER",
        help: "download a folder with its subfolders into the local folder [tree]",
        args: Args::RemoteName,
    },
    Spec {
        names: &["rput"],
        usage: "DIR [REMOTE]",
        help: "upload a local folder with its subfolders (as REMOTE) [tree]",
        args: Args::LocalWords,
    },
    Spec {
        names: &["mirror"],
        usage: "push|pull DIR [REMOTE] [--delete] [--dry-run]",
        help: "make REMOTE the same as the local DIR (push) or the other way (pull), copying only what differs by size or digest [tree]",
        args: Args::LocalWords,
    },
    Spec {
        names: &["lcd"],
        usage: "[DIR]",
        help: "change the local folder (default: your home folder)",
        args: Args::LocalDir,
    },
    Spec {
        names: &["lls"],
        usage: "[DIR]",
        help: "list a local folder",
        args: Args::LocalPath,
    },
    Spec {
        names: &["lpwd"],
        usage: "",
        help: "print the local folder",
        args: Args::None,
    },
    Spec {
        names: &["!"],
        usage: "[COMMAND]",
        help: "run COMMAND with the system shell (alone: start a shell)",
        args: Args::LocalWords,
    },
    Spec {
        names: &["help", "?"],
        usage: "",
        help: "this text",
        args: Args::None,
    },
    Spec {
        names: &["close", "quit", "exit", "bye"],
        usage: "",
        help: "end the session (also Ctrl-D, end of input)",
        args: Args::None,
    },
];

/// The command table's entry for `name`.
pub(super) fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.names.contains(&name))
}

/// The text of `help`.
pub(super) fn help() -> String {
    let mut out = String::from("commands:\n");
    for s in COMMANDS {
        let head = if s.names[0] == "!" {
            format!("!{}", s.usage)
        } else {
            format!("{} {}", s.names[0], s.usage)
        };
        let also = match s.names[1..].join(", ") {
            a if a.is_empty() => a,
            a => format!(" (also: {a})"),
        };
        out.push_str(&format!("  {:<22} {}{also}\n", head.trim_end(), s.help));
    }
    out.push_str(
        "NAME, FILE and DIR are the rest of the line, spaces included; in PATTERN lists, quote\n\
         names with spaces. Ctrl-C cancels a running transfer (and opens a new session).\n\
         In a batch (-b FILE, or commands piped in), the first failing command stops ferry\n\
         with its exit code; a line that starts with - may fail.",
    );
    out
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// Nothing to do (an empty line or a `#` comment).
    Nothing,
    Help,
    Close,
    Dir(Vec<String>),
    Get {
        name: String,
        resume: bool,
    },
    Mget(Vec<String>),
    Put {
        file: String,
        mode: PutMode,
    },
    Mput {
        patterns: Vec<String>,
        mode: PutMode,
    },
    Lcd(Option<String>),
    Lls(Option<String>),
    Lpwd,
    /// `!COMMAND`; `None`: start an interactive shell.
    Local(Option<String>),
    /// A command of the `tree` extension.
    Tree(TreeCommand),
}

/// The shell's commands of the `tree` extension (spec section 17), arguments parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TreeCommand {
    List {
        folder: Folder,
        recursive: bool,
        digests: bool,
    },
    Mkdir {
        paths: Vec<TreePath>,
        parents: bool,
    },
    Rmdir(Vec<TreePath>),
    Rm {
        paths: Vec<TreePath>,
        recursive: bool,
    },
    Mv(TreePath, TreePath),
    Rget(Folder),
    Rput {
        dir: String,
        remote: Option<Folder>,
    },
    Mirror {
        direction: crate::tree::Direction,
        dir: String,
        remote: Option<Folder>,
        delete: bool,
        dry_run: bool,
    },
}

/// Splits words into flags (from `allowed`) and the rest.
fn flags(words: Vec<String>, allowed: &[&str]) -> Result<(Vec<String>, Vec<String>), Usage> {
    let (flags, rest): (Vec<String>, Vec<String>) = words
        .into_iter()
        .partition(|w| w.starts_with('-') && w.len() > 1);
    if let Some(bad) = flags.iter().find(|f| !allowed.contains(&f.as_str())) {
        return Err(Usage(format!("unknown option {bad}")));
    }
    Ok((flags, rest))
}

fn tree_paths(words: &[String]) -> Result<Vec<TreePath>, Usage> {
    words
        .iter()
        .map(|w| crate::tree::parse_path(w).map_err(|e| Usage(format!("{w:?}: {e}"))))
        .collect()
}

fn tree_folder(word: &str) -> Result<Folder, Usage> {
    crate::tree::parse_folder(word).map_err(|e| Usage(format!("{word:?}: {e}")))
}

/// Parses the arguments of a command of the `tree` extension.
fn tree_command(command: &str, words: Vec<String>, usage: Usage) -> Result<TreeCommand, Usage> {
    Ok(match command {
        "list" => {
            let (f, rest) = flags(words, &["-r", "--digests"])?;
            let folder = match rest.as_slice() {
                [] => Folder::Root,
                [one] => tree_folder(one)?,
                _ => return Err(usage),
            };
            TreeCommand::List {
                folder,
                recursive: f.iter().any(|x| x == "-r"),
                digests: f.iter().any(|x| x == "--digests"),
            }
        }
        "mkdir" => {
            let (f, rest) = flags(words, &["-p"])?;
            if rest.is_empty() {
                return Err(usage);
            }
            TreeCommand::Mkdir {
                paths: tree_paths(&rest)?,
                parents: !f.is_empty(),
            }
        }
        "rmdir" if !words.is_empty() => TreeCommand::Rmdir(tree_paths(&words)?),
        "rm" => {
            let (f, rest) = flags(words, &["-r"])?;
            if rest.is_empty() {
                return Err(usage);
            }
            TreeCommand::Rm {
                paths: tree_paths(&rest)?,
                recursive: !f.is_empty(),
            }
        }
        "mv" => match tree_paths(&words)?.as_slice() {
            [from, to] => TreeCommand::Mv(from.clone(), to.clone()),
            _ => return Err(usage),
        },
        "rget" => match words.as_slice() {
            [one] => TreeCommand::Rget(tree_folder(one)?),
            _ => return Err(usage),
        },
        "mirror" => {
            let (f, rest) = flags(words, &["--delete", "--dry-run", "-n"])?;
            let direction = match rest.first().map(String::as_str) {
                Some("push") => crate::tree::Direction::Push,
                Some("pull") => crate::tree::Direction::Pull,
                _ => return Err(usage),
            };
            let (dir, remote) = match &rest[1..] {
                [dir] => (dir.clone(), None),
                [dir, remote] => (dir.clone(), Some(tree_folder(remote)?)),
                _ => return Err(usage),
            };
            TreeCommand::Mirror {
                direction,
                dir,
                remote,
                delete: f.iter().any(|x| x == "--delete"),
                dry_run: f.iter().any(|x| x == "--dry-run" || x == "-n"),
            }
        }
        "rput" => match words.as_slice() {
            [dir] => TreeCommand::Rput {
                dir: dir.clone(),
                remote: None,
            },
            [dir, remote] => TreeCommand::Rput {
                dir: dir.clone(),
                remote: Some(tree_folder(remote)?),
            },
            _ => return Err(usage),
        },
        _ => return Err(usage),
    })
}

/// A line that is not a valid command: the message to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Usage(pub String);

/// Splits a line into its command word and the rest (trimmed).
pub(super) fn split_command(line: &str) -> (&str, &str) {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('!') {
        return ("!", rest.trim());
    }
    match line.split_once(char::is_whitespace) {
        Some((c, r)) => (c, r.trim()),
        None => (line, ""),
    }
}

/// Parses one line (without a batch's leading `-`).
pub(super) fn parse(line: &str) -> Result<Command, Usage> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Command::Nothing);
    }
    let (word, rest) = split_command(trimmed);
    let Some(spec) = spec(word) else {
        return Err(Usage(format!(
            "unknown command {:?}; type help for the commands",
            ferry_sync::client::visible(word)
        )));
    };
    let usage = || {
        Usage(
            format!("usage: {} {}", spec.names[0], spec.usage)
                .trim_end()
                .into(),
        )
    };
    let words = || shell_words::split(rest).map_err(|e| Usage(format!("{word}: {e}")));
    let one = || (!rest.is_empty()).then(|| rest.to_owned());
    Ok(match spec.names[0] {
        "dir" => Command::Dir(words()?),
        "get" | "reget" => Command::Get {
            name: one().ok_or_else(usage)?,
            resume: word == "reget",
        },
        "mget" => match words()? {
            w if w.is_empty() => return Err(usage()),
            w => Command::Mget(w),
        },
        "put" | "replace" => Command::Put {
            file: one().ok_or_else(usage)?,
            mode: mode(spec.names[0]),
        },
        "mput" | "mreplace" => match words()? {
            w if w.is_empty() => return Err(usage()),
            patterns => Command::Mput {
                patterns,
                mode: mode(spec.names[0]),
            },
        },
        "list" | "mkdir" | "rmdir" | "rm" | "mv" | "rget" | "rput" | "mirror" => {
            Command::Tree(tree_command(spec.names[0], words()?, usage())?)
        }
        "lcd" => Command::Lcd(one()),
        "lls" => Command::Lls(one()),
        "!" => Command::Local(one()),
        _ if !rest.is_empty() => return Err(usage()),
        "lpwd" => Command::Lpwd,
        "help" => Command::Help,
        _ => Command::Close,
    })
}

fn mode(command: &str) -> PutMode {
    if command.contains("replace") {
        PutMode::Replace
    } else {
        PutMode::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    #[test]
    fn the_seed_commands_keep_their_meaning() {
        assert_eq!(ok("dir"), Command::Dir(vec![]));
        assert_eq!(
            ok("get my report (final).pdf"),
            Command::Get {
                name: "my report (final).pdf".into(),
                resume: false
            }
        );
        assert_eq!(
            ok("  put  a b.txt "),
            Command::Put {
                file: "a b.txt".into(),
                mode: PutMode::New
            }
        );
        assert_eq!(
            ok("replace x"),
            Command::Put {
                file: "x".into(),
                mode: PutMode::Replace
            }
        );
        for close in ["close", "quit", "exit", "bye"] {
            assert_eq!(ok(close), Command::Close);
        }
        assert_eq!(ok("?"), Command::Help);
        assert_eq!(ok(""), Command::Nothing);
        assert_eq!(ok("# a comment"), Command::Nothing);
    }

    #[test]
    fn word_lists_take_quotes() {
        assert_eq!(
            ok("mget *.txt 'my report*' b\\ c"),
            Command::Mget(vec!["*.txt".into(), "my report*".into(), "b c".into()])
        );
        assert_eq!(
            ok("mreplace *.log"),
            Command::Mput {
                patterns: vec!["*.log".into()],
                mode: PutMode::Replace
            }
        );
        assert_eq!(ok("ls *.md"), Command::Dir(vec!["*.md".into()]));
    }

    #[test]
    fn local_commands() {
        assert_eq!(ok("lcd"), Command::Lcd(None));
        assert_eq!(ok("lcd my dir"), Command::Lcd(Some("my dir".into())));
        assert_eq!(ok("lls"), Command::Lls(None));
        assert_eq!(ok("lpwd"), Command::Lpwd);
        assert_eq!(ok("!ls -l"), Command::Local(Some("ls -l".into())));
        assert_eq!(ok("! echo hi"), Command::Local(Some("echo hi".into())));
        assert_eq!(ok("!"), Command::Local(None));
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(parse("get"), Err(Usage("usage: get NAME".into())));
        assert_eq!(parse("mget"), Err(Usage("usage: mget PATTERN...".into())));
        assert_eq!(parse("lpwd x"), Err(Usage("usage: lpwd".into())));
        assert_eq!(parse("close now"), Err(Usage("usage: close".into())));
        assert!(
            parse("frobnicate").is_err_and(|u| u.0.starts_with("unknown command \"frobnicate\""))
        );
        assert!(parse("mget 'open").is_err_and(|u| u.0.starts_with("mget: ")));
    }

    #[test]
    fn tree_commands_take_paths_and_flags() {
        let p = |s: &str| TreePath::new(s).expect("path");
        assert_eq!(
            ok("rm -r 'my docs' a/b"),
            Command::Tree(TreeCommand::Rm {
                paths: vec![p("my docs"), p("a/b")],
                recursive: true
            })
        );
        assert_eq!(
            ok("list --digests -r docs/"),
            Command::Tree(TreeCommand::List {
                folder: Folder::Path(p("docs")),
                recursive: true,
                digests: true
            })
        );
        assert_eq!(
            ok("mv a 'b c/d'"),
            Command::Tree(TreeCommand::Mv(p("a"), p("b c/d")))
        );
        assert_eq!(ok("rget ."), Command::Tree(TreeCommand::Rget(Folder::Root)));
        assert_eq!(
            ok("mirror push site --delete"),
            Command::Tree(TreeCommand::Mirror {
                direction: crate::tree::Direction::Push,
                dir: "site".into(),
                remote: None,
                delete: true,
                dry_run: false,
            })
        );
        assert_eq!(
            ok("mirror pull back site -n"),
            Command::Tree(TreeCommand::Mirror {
                direction: crate::tree::Direction::Pull,
                dir: "back".into(),
                remote: Some(Folder::Path(
                    ferry_wire::TreePath::new("site").expect("path")
                )),
                delete: false,
                dry_run: true,
            })
        );
        for bad in [
            "mv a",
            "rm",
            "rm -x a",
            "mkdir ../a",
            "rmdir",
            "rget a b",
            "mirror site",
            "mirror sideways site",
            "mirror push",
            "mirror push a b c",
            "mirror push a --force",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn help_lists_every_command() {
        let h = help();
        for s in COMMANDS {
            assert!(h.contains(s.names[0]), "{}", s.names[0]);
        }
    }
}
