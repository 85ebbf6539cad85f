//! Reader for ferry/1 example transcripts (`spec/examples/*.txt`; format in
//! `spec/protocol.md` section 14 and `spec/examples/README.md`), those of the `tree`
//! extension (`@server tree`, `@folder`, paths in `@file`) included.
//!
//! A transcript is a list of directives and of steps, each step being octets sent by the
//! client or the server, or one side closing the connection. Tests replay the steps against
//! the codec, and the conformance runner against real servers and clients.

use std::path::{Path, PathBuf};

/// Who sends a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `C` lines.
    Client,
    /// `S` lines.
    Server,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `C: TEXT` / `S: TEXT`: the text, then LF. The octets include the LF.
    Line(Vec<u8>),
    /// `C> ESCAPED` / `S> ESCAPED`: raw octets, sent as they are.
    Raw(Vec<u8>),
    /// `C.` / `S.`: that side closes the connection.
    Close,
}

/// One step of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The sender.
    pub side: Side,
    /// What it sends.
    pub action: Action,
    /// Line number in the file (1-based), for messages.
    pub line_no: usize,
    /// The step was preceded by a `# invalid` comment: it is deliberately not a valid message.
    pub invalid: bool,
}

/// A file the served folder holds before the session (`@file` plus `@data` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// Modification time as written (RFC 3339 UTC).
    pub mtime: String,
    /// The file name; under `@server tree` a path of several names joined by `/`, whose
    /// folders are declared by earlier `@folder` lines.
    pub name: String,
    /// The content.
    pub content: Vec<u8>,
}

/// A folder the served folder holds before the session (`@folder`, under `@server tree`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderFixture {
    /// Modification time as written (RFC 3339 UTC): the folder's, once every fixture is in
    /// place.
    pub mtime: String,
    /// The folder's path (one or more names joined by `/`).
    pub path: String,
}

/// A parsed transcript.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transcript {
    /// The file it was read from (empty for [`Transcript::parse`]).
    pub path: PathBuf,
    /// `@title`.
    pub title: String,
    /// `@requires`: the requirement IDs the transcript demonstrates.
    pub requires: Vec<String>,
    /// `@server` options, e.g. `read-only`, `max-size=100`, `fault=no-space`.
    pub server: Vec<String>,
    /// `@file` fixtures, in order.
    pub files: Vec<Fixture>,
    /// `@folder` fixtures, in order.
    pub folders: Vec<FolderFixture>,
    /// The steps, in file order.
    pub steps: Vec<Step>,
}

/// A syntax error in a transcript file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct Error {
    /// The file.
    pub path: String,
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Transcript {
    /// Parses transcript text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse(text, Path::new(""))
    }

    /// Reads and parses a transcript file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error {
            path: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        parse(&text, path)
    }

    /// Reads every `*.txt` transcript of a folder, sorted by file name.
    pub fn read_dir(dir: &Path) -> Result<Vec<Self>, Error> {
        let err = |message: String| Error {
            path: dir.display().to_string(),
            line: 0,
            message,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::read(p)).collect()
    }

    /// Whether the transcript needs a server state that cannot be forced on an arbitrary
    /// server (`@server fault=...` or `@server busy`): such transcripts illustrate the
    /// protocol but are not replayed against real servers.
    pub fn is_illustrative(&self) -> bool {
        self.server
            .iter()
            .any(|o| o.starts_with("fault=") || o == "busy")
    }

    /// The value of a `@server KEY=VALUE` option.
    pub fn server_option(&self, key: &str) -> Option<&str> {
        self.server
            .iter()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }

    /// Whether a bare `@server FLAG` option is present.
    pub fn server_flag(&self, flag: &str) -> bool {
        self.server.iter().any(|o| o == flag)
    }

    /// Whether the server offers the `tree` extension (`@server tree`, spec section 17): its
    /// greeting ends with ` ext=tree`.
    pub fn tree(&self) -> bool {
        self.server_flag("tree")
    }

    /// All octets one side sends, in order.
    pub fn bytes_of(&self, side: Side) -> Vec<u8> {
        let mut out = Vec::new();
        for s in self.steps.iter().filter(|s| s.side == side) {
            match &s.action {
                Action::Line(b) | Action::Raw(b) => out.extend_from_slice(b),
                Action::Close => {}
            }
        }
        out
    }
}

/// Decodes the escapes `\\`, `\n`, `\r`, `\t` and `\xHH`; other characters stand for their
/// UTF-8 octets.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('\\') => out.push(b'\\'),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let v = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("bad escape \\x{hex}"))?;
                out.push(v);
            }
            other => {
                return Err(format!(
                    "bad escape \\{}",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

fn parse(text: &str, path: &Path) -> Result<Transcript, Error> {
    let mut t = Transcript {
        path: path.to_path_buf(),
        ..Transcript::default()
    };
    let mut invalid_next = false;
    // `@data` continues the last `@file`, never a `@folder` between them.
    let mut data_ok = false;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let err = |message: String| Error {
            path: path.display().to_string(),
            line: line_no,
            message,
        };
        if raw.trim().is_empty() {
            continue;
        }
        if let Some(comment) = raw.strip_prefix('#') {
            if comment.trim() == "invalid" {
                invalid_next = true;
            }
            continue;
        }
        if let Some(d) = raw.strip_prefix('@') {
            let (key, val) = d.split_once(' ').unwrap_or((d, ""));
            match key {
                "title" => t.title = val.to_owned(),
                "requires" => t.requires.extend(val.split_whitespace().map(str::to_owned)),
                "server" => t.server.extend(val.split_whitespace().map(str::to_owned)),
                "file" => {
                    let (mtime, name) = val
                        .split_once(' ')
                        .ok_or_else(|| err("@file needs MTIME NAME".into()))?;
                    t.files.push(Fixture {
                        mtime: mtime.into(),
                        name: name.into(),
                        content: vec![],
                    });
                    data_ok = true;
                }
                "folder" => {
                    let (mtime, path) = val
                        .split_once(' ')
                        .ok_or_else(|| err("@folder needs MTIME PATH".into()))?;
                    t.folders.push(FolderFixture {
                        mtime: mtime.into(),
                        path: path.into(),
                    });
                    data_ok = false;
                }
                "data" => {
                    let bytes = unescape(val).map_err(err)?;
                    let f = t
                        .files
                        .last_mut()
                        .filter(|_| data_ok)
                        .ok_or_else(|| err("@data without @file".into()))?;
                    f.content.extend_from_slice(&bytes);
                }
                _ => return Err(err(format!("unknown directive @{key}"))),
            }
            continue;
        }
        let side = match raw.as_bytes().first() {
            Some(b'C') => Side::Client,
            Some(b'S') => Side::Server,
            _ => return Err(err(format!("unrecognised line {raw:?}"))),
        };
        let rest = &raw[1..];
        let action = if rest == "." {
            Action::Close
        } else if let Some(line) = rest
            .strip_prefix(": ")
            .or_else(|| (rest == ":").then_some(""))
        {
            let mut b = line.as_bytes().to_vec();
            b.push(b'\n');
            Action::Line(b)
        } else if let Some(esc) = rest.strip_prefix("> ") {
            Action::Raw(unescape(esc).map_err(err)?)
        } else {
            return Err(err(format!("unrecognised step {raw:?}")));
        };
        t.steps.push(Step {
            side,
            action,
            line_no,
            invalid: std::mem::take(&mut invalid_next),
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let t = Transcript::parse(
            "@title get\n@requires GET-1 GET-5\n@server read-only max-size=9\n\
             @file 2026-01-01T00:00:00Z a b.txt\n@data he\n@data llo\\n\n# note\n\
             S: ferry/1\n# invalid\nC: get x\nS> data 2\\nhi\nC.\nS.\n",
        )
        .expect("valid transcript");
        assert_eq!(t.title, "get");
        assert_eq!(t.requires, ["GET-1", "GET-5"]);
        assert_eq!(t.server_option("max-size"), Some("9"));
        assert!(t.server_flag("read-only"));
        assert_eq!(t.files[0].name, "a b.txt");
        assert_eq!(t.files[0].content, b"hello\n");
        assert_eq!(t.steps.len(), 5);
        assert!(t.steps[1].invalid && !t.steps[0].invalid && !t.steps[2].invalid);
        assert_eq!(t.bytes_of(Side::Server), b"ferry/1\ndata 2\nhi");
        assert_eq!(t.steps[3].action, Action::Close);
        assert!(t.folders.is_empty() && !t.tree());
    }

    #[test]
    fn parses_folders_and_paths() {
        let t = Transcript::parse(
            "@server tree\n@folder 2024-03-01T08:00:00Z my docs\n\
             @file 2024-01-05T09:15:00Z my docs/a b.txt\n@data x\n@folder 2024-02-01T00:00:00Z my docs/sub\n",
        )
        .expect("valid transcript");
        assert!(t.tree());
        assert_eq!(
            t.folders,
            [
                FolderFixture {
                    mtime: "2024-03-01T08:00:00Z".into(),
                    path: "my docs".into()
                },
                FolderFixture {
                    mtime: "2024-02-01T00:00:00Z".into(),
                    path: "my docs/sub".into()
                }
            ]
        );
        assert_eq!(t.files[0].name, "my docs/a b.txt");
        assert_eq!(t.files[0].content, b"x");
        let e = Transcript::parse("@folder 2024-03-01T08:00:00Z\n").expect_err("no path");
        assert_eq!(e.line, 1);
        let e = Transcript::parse(
            "@file 2024-03-01T08:00:00Z a\n@folder 2024-03-01T08:00:00Z d\n@data x\n",
        )
        .expect_err("data of a folder");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn reports_errors_with_line_numbers() {
        let e = Transcript::parse("S: ok\nX: nope\n").expect_err("bad side");
        assert_eq!(e.line, 2);
        let e = Transcript::parse("C> \\xZZ\n").expect_err("bad escape");
        assert!(e.message.contains("bad escape"), "{e}");
    }

    #[test]
    fn unescape_handles_utf8_and_escapes() {
        assert_eq!(
            unescape("射\\x00\\\\\\r\\n").expect("ok"),
            "射\0\\\r\n".as_bytes()
        );
    }
}
