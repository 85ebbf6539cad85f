//! Tab completion: command names, the server's file names (from the last listing) and
//! local paths. [`complete`] is a pure function of the line, the cursor, the listing and a
//! way to list a local folder; [`Helper`] plugs it into rustyline.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;

use super::command::{Args, COMMANDS, spec};

/// One way to complete the text before the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Candidate {
    /// What the list of choices shows.
    pub display: String,
    /// What replaces the text from the returned start to the cursor.
    pub replacement: String,
}

/// A local folder's entries: (name, is a folder). Names that are not UTF-8 are left out.
pub(super) type ListLocal<'a> = &'a dyn Fn(&Path) -> Vec<(String, bool)>;

/// Completes `line` at byte offset `pos`: returns where the replaced text starts and the
/// candidates, sorted. `remote` is the server's file names as last listed.
pub(super) fn complete(
    line: &str,
    pos: usize,
    remote: &[String],
    list_local: ListLocal<'_>,
) -> (usize, Vec<Candidate>) {
    let Some(head) = line.get(..pos) else {
        return (pos, Vec::new());
    };
    // Skip blanks and a batch line's `-`.
    let mut start = head.len() - head.trim_start().len();
    if head[start..].starts_with('-') {
        start += 1;
        start += head[start..].len() - head[start..].trim_start().len();
    }
    let cmd = &head[start..];
    let (args, rest_start) = if cmd.starts_with('!') {
        (Args::LocalWords, start + 1)
    } else {
        match cmd.find(char::is_whitespace) {
            None => return (start, commands(cmd)),
            Some(end) => match spec(&cmd[..end]) {
                None => return (pos, Vec::new()),
                Some(s) => {
                    let after = &cmd[end..];
                    (
                        s.args,
                        start + end + (after.len() - after.trim_start().len()),
                    )
                }
            },
        }
    };
    let rest = &head[rest_start..];
    let mut found = match args {
        Args::None => return (pos, Vec::new()),
        Args::RemoteName => (
            rest_start,
            remote
                .iter()
                .filter(|n| n.starts_with(rest))
                .map(|n| Candidate {
                    display: n.clone(),
                    replacement: n.clone(),
                })
                .collect(),
        ),
        Args::LocalPath | Args::LocalDir => (
            rest_start,
            local(rest, args == Args::LocalDir, list_local)
                .into_iter()
                .map(|(display, path)| Candidate {
                    display,
                    replacement: path,
                })
                .collect(),
        ),
        Args::RemoteWords | Args::LocalWords => {
            let word_start = rest_start + last_word(rest);
            let typed = unquote(&head[word_start..]);
            // Words are glob patterns, except after `!`.
            let glob = !cmd.starts_with('!');
            let quote = |s: &str| -> String {
                let s = if glob {
                    glob::Pattern::escape(s)
                } else {
                    s.to_owned()
                };
                shell_words::quote(&s).into_owned()
            };
            let found: Vec<Candidate> = if args == Args::RemoteWords {
                remote
                    .iter()
                    .filter(|n| n.starts_with(&typed))
                    .map(|n| Candidate {
                        display: n.clone(),
                        replacement: quote(n),
                    })
                    .collect()
            } else {
                local(&typed, false, list_local)
                    .into_iter()
                    .map(|(display, path)| Candidate {
                        display,
                        replacement: quote(&path),
                    })
                    .collect()
            };
            (word_start, found)
        }
    };
    found.1.sort_by(|a, b| a.display.cmp(&b.display));
    found.1.dedup();
    found
}

/// Command names starting with `typed`; those that take arguments get a space after them.
fn commands(typed: &str) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = COMMANDS
        .iter()
        .flat_map(|s| s.names.iter().map(move |n| (n, s.args)))
        .filter(|(n, _)| **n != "!" && **n != "?" && n.starts_with(typed))
        .map(|(n, args)| Candidate {
            display: (*n).to_owned(),
            replacement: if args == Args::None {
                (*n).to_owned()
            } else {
                format!("{n} ")
            },
        })
        .collect();
    out.sort_by(|a, b| a.display.cmp(&b.display));
    out
}

/// Local entries completing the path `typed`: (shown name, completed path); folders end
/// with `/`. Hidden entries only when the typed name starts with a dot.
fn local(typed: &str, dirs_only: bool, list_local: ListLocal<'_>) -> Vec<(String, String)> {
    let (dir_part, prefix) = match typed.rfind('/') {
        Some(i) => typed.split_at(i + 1),
        None => ("", typed),
    };
    let dir = if dir_part.is_empty() {
        Path::new(".")
    } else {
        Path::new(dir_part)
    };
    list_local(dir)
        .into_iter()
        .filter(|(name, is_dir)| {
            name.starts_with(prefix)
                && (!name.starts_with('.') || prefix.starts_with('.'))
                && (*is_dir || !dirs_only)
        })
        .map(|(name, is_dir)| {
            let slash = if is_dir { "/" } else { "" };
            (format!("{name}{slash}"), format!("{dir_part}{name}{slash}"))
        })
        .collect()
}

/// Where the last word of `s` starts: after the last blank outside quotes and not escaped.
fn last_word(s: &str) -> usize {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            c if c.is_whitespace() && !single && !double => start = i + c.len_utf8(),
            _ => {}
        }
    }
    start
}

/// A word as typed so far, without its quotes and escapes (an open quote is fine).
fn unquote(word: &str) -> String {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut out = String::new();
    for c in word.chars() {
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            c => out.push(c),
        }
    }
    out
}

/// The entries of a local folder, for completion.
pub(super) fn read_local(dir: &Path) -> Vec<(String, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            // Follows symbolic links: a link to a folder completes as a folder.
            let is_dir = std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
            Some((name, is_dir))
        })
        .collect()
}

/// The server's file names as last listed, shared between the shell and the line editor.
pub(super) type RemoteNames = Arc<Mutex<Vec<String>>>;

/// rustyline's helper: completion only.
#[derive(Debug)]
pub(super) struct Helper {
    /// The names completion offers for the server's files.
    pub remote: RemoteNames,
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, found) = complete(line, pos, &remote, &read_local);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.display,
                    replacement: c.replacement,
                })
                .collect(),
        ))
    }
}

impl Hinter for Helper {
    type Hint = String;
}

impl Highlighter for Helper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for Helper {}

impl rustyline::Helper for Helper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> Vec<String> {
        ["a.txt", "a b.txt", "b[1].log", "report.pdf"]
            .map(String::from)
            .to_vec()
    }

    /// A local tree: ./docs/, ./data.csv, ./.hidden, ./docs/notes.md, ./docs/old/.
    fn fake(dir: &Path) -> Vec<(String, bool)> {
        let entries: &[(&str, bool)] = if dir == Path::new(".") {
            &[("docs", true), ("data.csv", false), (".hidden", false)]
        } else if dir == Path::new("docs/") {
            &[("notes.md", false), ("old", true)]
        } else {
            &[]
        };
        entries.iter().map(|(n, d)| ((*n).to_owned(), *d)).collect()
    }

    /// (start, replacements) at the end of `line`.
    fn at_end(line: &str) -> (usize, Vec<String>) {
        let (start, found) = complete(line, line.len(), &remote(), &fake);
        (start, found.into_iter().map(|c| c.replacement).collect())
    }

    #[test]
    fn command_names() {
        assert_eq!(at_end("g"), (0, vec!["get ".to_owned()]));
        assert_eq!(
            at_end("  m"),
            (
                2,
                vec![
                    "mget ".into(),
                    "mirror ".into(),
                    "mkdir ".into(),
                    "mput ".into(),
                    "mreplace ".into(),
                    "mv ".into()
                ]
            )
        );
        assert_eq!(at_end("lp"), (0, vec!["lpwd".to_owned()]));
        // A batch line's `-` is skipped.
        assert_eq!(at_end("-re"), (1, vec!["reget ".into(), "replace ".into()]));
        assert_eq!(at_end("-reg"), (1, vec!["reget ".to_owned()]));
        assert_eq!(at_end("xyz"), (0, vec![]));
    }

    #[test]
    fn remote_names_for_get_are_the_rest_of_the_line() {
        assert_eq!(
            at_end("get a"),
            (4, vec!["a b.txt".to_owned(), "a.txt".to_owned()])
        );
        assert_eq!(at_end("get a "), (4, vec!["a b.txt".to_owned()]));
        assert_eq!(at_end("reget  rep"), (7, vec!["report.pdf".to_owned()]));
        assert_eq!(at_end("get zz"), (4, vec![]));
        // Only the text before the cursor counts.
        let (start, found) = complete("get rXYZ", 5, &remote(), &fake);
        assert_eq!((start, found.len()), (4, 1));
    }

    #[test]
    fn remote_words_are_quoted_and_glob_escaped() {
        assert_eq!(
            at_end("mget *.log a"),
            (11, vec!["'a b.txt'".to_owned(), "a.txt".to_owned()])
        );
        assert_eq!(at_end("mget b"), (5, vec!["'b[[]1[]].log'".to_owned()]));
        assert_eq!(at_end("mget 'a "), (5, vec!["'a b.txt'".to_owned()]));
        assert_eq!(at_end("dir r"), (4, vec!["report.pdf".to_owned()]));
    }

    #[test]
    fn local_paths() {
        assert_eq!(
            at_end("put d"),
            (4, vec!["data.csv".into(), "docs/".into()])
        );
        assert_eq!(at_end("put ."), (4, vec![".hidden".to_owned()]));
        assert_eq!(
            at_end("put docs/"),
            (4, vec!["docs/notes.md".into(), "docs/old/".into()])
        );
        // lcd offers folders only.
        assert_eq!(at_end("lcd "), (4, vec!["docs/".to_owned()]));
        assert_eq!(at_end("lcd docs/"), (4, vec!["docs/old/".to_owned()]));
        assert_eq!(
            at_end("mput x docs/n"),
            (7, vec!["docs/notes.md".to_owned()])
        );
        assert_eq!(at_end("!cat da"), (5, vec!["data.csv".to_owned()]));
        // Commands without arguments complete nothing.
        assert_eq!(at_end("lpwd "), (5, vec![]));
    }
}
