//! The shell's local commands: `lcd`, `lls`, `lpwd`, `!COMMAND`, and the local side of
//! `mput` (glob patterns).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_wire::Timestamp;

use crate::exit;

/// `~` and `~/…` expanded to the home folder.
fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), home()) {
        (Some(""), Some(h)) => h,
        (Some(rest), Some(h)) if rest.starts_with(['/', std::path::MAIN_SEPARATOR]) => {
            h.join(&rest[1..])
        }
        _ => PathBuf::from(path),
    }
}

/// The user's home folder.
pub(super) fn home() -> Option<PathBuf> {
    std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `lcd [DIR]`: changes the local folder (default: home).
pub(super) fn lcd(dir: Option<&str>) -> Result<(), u8> {
    let target = match dir {
        Some(d) => expand(d),
        None => home().ok_or_else(|| {
            eprintln!("error: lcd: no home folder is set (HOME)");
            exit::USAGE
        })?,
    };
    std::env::set_current_dir(&target).map_err(|e| {
        eprintln!("error: lcd {}: {e}", target.display());
        exit::LOCAL_IO
    })
}

/// `lpwd`: prints the local folder.
pub(super) fn lpwd() -> Result<(), u8> {
    match std::env::current_dir() {
        Ok(d) => {
            println!("{}", d.display());
            Ok(())
        }
        Err(e) => {
            eprintln!("error: lpwd: {e}");
            Err(exit::LOCAL_IO)
        }
    }
}

/// `lls [DIR]`: the folder's entries as `dir` shows the server's: size, modification time
/// (UTC), name; folders end with `/`, hidden entries are left out.
pub(super) fn lls(dir: Option<&str>) -> Result<(), u8> {
    let path = expand(dir.unwrap_or("."));
    let fail = |e: io::Error| {
        eprintln!("error: lls {}: {e}", path.display());
        exit::LOCAL_IO
    };
    let meta = fs::metadata(&path).map_err(fail)?;
    let mut rows = Vec::new();
    if meta.is_dir() {
        for entry in fs::read_dir(&path).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // Follows symbolic links; a dangling one shows with its own metadata.
            let Ok(m) = fs::metadata(entry.path()).or_else(|_| entry.metadata()) else {
                continue;
            };
            rows.push(row(name, &m));
        }
    } else {
        rows.push(row(path.display().to_string(), &meta));
    }
    rows.sort_by(|a, b| a.2.cmp(&b.2));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(1);
    let mut out = io::stdout().lock();
    for (size, mtime, name) in rows {
        let _ = writeln!(
            out,
            "{size:>width$}  {mtime}  {}",
            ferry_sync::client::visible(&name)
        );
    }
    Ok(())
}

fn row(mut name: String, m: &fs::Metadata) -> (String, String, String) {
    if m.is_dir() {
        name.push('/');
    }
    let mtime = m
        .modified()
        .map(|t| Timestamp::from_system_time(t).to_string())
        .unwrap_or_else(|_| "-".into());
    (m.len().to_string(), mtime, name)
}

/// `!COMMAND` (run with `sh -c`, or `cmd /C` on Windows) or `!` alone (an interactive
/// shell). `script_on_stdin`: the shell's own commands come from stdin, which the command
/// must not read.
pub(super) fn run(command: Option<&str>, script_on_stdin: bool) -> Result<(), u8> {
    let mut cmd = match command {
        Some(c) if cfg!(windows) => {
            let mut cmd = Command::new("cmd");
            cmd.arg("/C").arg(c);
            cmd
        }
        Some(c) => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(c);
            cmd
        }
        None if script_on_stdin => {
            eprintln!("error: ! without a command needs a terminal");
            return Err(exit::USAGE);
        }
        None => Command::new(
            std::env::var_os(if cfg!(windows) { "COMSPEC" } else { "SHELL" })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| if cfg!(windows) { "cmd" } else { "sh" }.into()),
        ),
    };
    if script_on_stdin {
        cmd.stdin(Stdio::null());
    }
    let _ = io::stdout().flush();
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            eprintln!("error: the command {s}");
            Err(exit::PERMANENT)
        }
        Err(e) => {
            eprintln!("error: cannot run the command: {e}");
            Err(exit::LOCAL_IO)
        }
    }
}

/// The local files (not folders) matching the glob `pattern`, in order; an error message
/// if the pattern is not valid. Unreadable entries are skipped.
pub(super) fn glob_files(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let expanded = expand(pattern);
    let text = expanded.to_string_lossy();
    let paths = glob::glob(&text).map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
    Ok(paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect())
}

/// Whether `path` exists with data in it (a kept partial download).
pub(super) fn has_data(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}
