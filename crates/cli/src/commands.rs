//! The one-shot commands: `dir`, `get`, `put`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, PutOptions, local_path, name_for_local, part_path,
    visible,
};
use ferry_wire::{Code, Entry, FileName, NameError, PutMode, SkippedEntry};

use crate::addr::ServerAddr;
use crate::engine::{AnyClient, Impl};
use crate::exit::{self, Worst};
use crate::progress::Bars;

/// Prints `ferry: WHAT: ERROR` on stderr.
pub fn report(what: &str, e: &ClientError) {
    eprintln!("ferry: {what}: {e}");
}

/// Connects and reads the greeting; on failure reports it and returns the exit code.
pub fn connect(engine: Impl, addr: &ServerAddr) -> Result<AnyClient, u8> {
    AnyClient::connect(engine, addr.target(), &ClientOptions::default()).map_err(|e| {
        report(&format!("cannot start a session with {addr}"), &e);
        exit::for_error(&e)
    })
}

/// Ends the session politely if it is still open; a failure here changes nothing that
/// was done.
pub fn close(client: AnyClient) {
    if client.is_open() {
        if let Err(e) = client.close() {
            tracing::debug!("close: {e}");
        }
    }
}

/// Writes a listing as aligned columns: size, modification time (UTC), name (with invisible
/// characters made visible).
pub fn print_listing(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
    let width = entries
        .iter()
        .map(|e| e.size.to_string().len())
        .max()
        .unwrap_or(1);
    for e in entries {
        writeln!(
            out,
            "{:>width$}  {}  {}",
            e.size,
            e.mtime,
            visible(e.name.as_str())
        )?;
    }
    Ok(())
}

/// One line of `ferry dir --json`.
#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    name: &'a str,
    size: u64,
    /// RFC 3339, UTC.
    mtime: String,
}

/// `ferry dir ADDR [--json]`.
pub fn dir(engine: Impl, addr: &ServerAddr, json: bool) -> u8 {
    let mut client = match connect(engine, addr) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let listing = match client.dir_listing() {
        Ok(listing) => listing,
        Err(e) => {
            report("dir", &e);
            return exit::for_error(&e);
        }
    };
    close(client);
    // NAME-14, NAME-15: an entry whose name this client cannot accept is left out of the
    // listing and named on stderr; the rest of the listing is good, so the exit status is 0.
    for s in &listing.skipped {
        warn_skipped(s);
    }
    let entries = listing.entries;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if json {
        entries.iter().try_for_each(|e| {
            let obj = JsonEntry {
                name: e.name.as_str(),
                size: e.size,
                mtime: e.mtime.to_string(),
            };
            let line = serde_json::to_string(&obj).map_err(io::Error::other)?;
            writeln!(out, "{line}")
        })
    } else {
        print_listing(&mut out, &entries)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("ferry: writing the listing: {e}");
            exit::LOCAL_IO
        }
    }
}

/// The warning for a listing entry skipped because its name is not valid here (NAME-15).
pub fn warn_skipped(s: &SkippedEntry) {
    eprintln!(
        "ferry: warning: skipped a listed file whose name is not valid ({}): {}",
        s.error,
        shown_octets(&s.name, s.error == NameError::NotNfc)
    );
}

/// A name's octets for a person, whatever they hold: invisible and direction-changing
/// characters as `\u{…}` ([`visible`]), code points that Unicode 18.0.0 does not assign as
/// `\u{…}` too (and, with `all_non_ascii`, every character outside ASCII, so that a name
/// that is not NFC does not look like its NFC form), and octets that are not UTF-8 as `\xHH`.
fn shown_octets(name: &[u8], all_non_ascii: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if (c.is_ascii() || !all_non_ascii) && ferry_wire::is_assigned(c) {
                out.push_str(&visible(c.encode_utf8(&mut [0; 4])));
            } else {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Says where a failed download's partial data is, if it was kept.
fn partial_hint(dest: &Path) {
    if let Ok(part) = part_path(dest) {
        if fs::symlink_metadata(&part).is_ok_and(|m| m.is_file() && m.len() > 0) {
            eprintln!(
                "ferry: partial data kept in {}; `ferry get --continue` resumes it",
                part.display()
            );
        }
    }
}

/// Whether `path` can only name a folder: it ends with a path separator (`downloads/`), or
/// its last component is `.` or `..`. (`Path` itself forgets a trailing separator:
/// `Path::new("downloads/").file_name()` is `downloads`.)
fn names_folder(path: &Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    let last = bytes
        .rsplit(|&b| std::path::is_separator(char::from(b)))
        .next()
        .unwrap_or(bytes);
    matches!(last, b"" | b"." | b"..")
}

/// Creates the folder `dir` (and its parents) if missing; on failure reports it (with
/// `why` after a "not a folder") and returns the exit code.
fn make_folder(dir: &Path, why: &str) -> Result<(), u8> {
    // Without a trailing separator, which makes a file look missing to `exists`.
    let plain: PathBuf = dir.components().collect();
    if plain.exists() && !plain.is_dir() {
        eprintln!("ferry: {} is not a folder{why}", dir.display());
        return Err(exit::USAGE);
    }
    fs::create_dir_all(dir).map_err(|e| {
        eprintln!("ferry: {}: {e}", dir.display());
        exit::LOCAL_IO
    })
}

/// `ferry get ADDR NAME... [-o PATH] [--continue]`.
pub fn get(
    engine: Impl,
    addr: &ServerAddr,
    names: &[FileName],
    output: Option<&Path>,
    resume: bool,
) -> u8 {
    let opts = GetOptions {
        resume,
        ..GetOptions::default()
    };
    // Where things go is settled before connecting.
    enum Plan {
        One(PathBuf),
        Many(PathBuf),
    }
    let plan = if let [name] = names {
        // `-o` is the destination file, unless it is a folder: one that exists, or one named
        // with a trailing separator (`-o downloads/`), created if missing.
        let dest = match output {
            None => local_path(Path::new("."), name),
            Some(p) if p.is_dir() => local_path(p, name),
            Some(p) if names_folder(p) => {
                if let Err(code) = make_folder(p, "") {
                    return code;
                }
                local_path(p, name)
            }
            Some(p) => Ok(p.to_path_buf()),
        };
        match dest {
            Ok(d) => Plan::One(d),
            Err(e) => {
                report(&format!("get {}", visible(name.as_str())), &e);
                return exit::for_error(&e);
            }
        }
    } else {
        let dir = output.unwrap_or(Path::new("."));
        if let Err(code) = make_folder(dir, " (several NAMEs need a folder)") {
            return code;
        }
        Plan::Many(dir.to_path_buf())
    };
    let mut client = match connect(engine, addr) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut bars = Bars::new();
    let mut worst = Worst::default();
    match plan {
        Plan::One(dest) => {
            let result = client.get_to_path(&names[0], &dest, &opts, &mut |p| bars.update(p));
            bars.finish();
            if let Err(e) = result {
                report(&format!("get {}", visible(names[0].as_str())), &e);
                worst.add(exit::for_error(&e));
                partial_hint(&dest);
            }
        }
        Plan::Many(dir) => {
            let results = client.get_many(names, &dir, &opts, &mut |p| bars.update(p));
            bars.finish();
            for (name, result) in names.iter().zip(results) {
                if let Err(e) = result {
                    report(&format!("get {}", visible(name.as_str())), &e);
                    worst.add(exit::for_error(&e));
                    if let Ok(dest) = local_path(&dir, name) {
                        partial_hint(&dest);
                    }
                }
            }
        }
    }
    close(client);
    worst.code()
}

/// `ferry put ADDR FILE... [--as NAME] [--replace]`.
pub fn put(
    engine: Impl,
    addr: &ServerAddr,
    files: &[PathBuf],
    as_name: Option<FileName>,
    replace: bool,
) -> u8 {
    let mode = if replace {
        PutMode::Replace
    } else {
        PutMode::New
    };
    let opts = PutOptions {
        mode,
        ..PutOptions::default()
    };
    let mut worst = Worst::default();
    let mut batch = Vec::new();
    for file in files {
        let name = match &as_name {
            Some(n) => Ok(n.clone()),
            None => name_for_local(file),
        };
        match name {
            Ok(name) => batch.push((file.clone(), name)),
            Err(e) => {
                report(&format!("put {}", file.display()), &e);
                eprintln!("ferry: hint: `--as NAME` stores a file under another name");
                worst.add(exit::for_error(&e));
            }
        }
    }
    if batch.is_empty() {
        return worst.code();
    }
    let mut client = match connect(engine, addr) {
        Ok(c) => c,
        Err(code) => {
            worst.add(code);
            return worst.code();
        }
    };
    let mut bars = Bars::new();
    let results = client.put_many(&batch, &opts, &mut |p| bars.update(p));
    bars.finish();
    let mut exists = false;
    for ((file, _), result) in batch.iter().zip(results) {
        if let Err(e) = result {
            report(&format!("put {}", file.display()), &e);
            worst.add(exit::for_error(&e));
            exists |= e.code() == Some(Code::EXISTS);
        }
    }
    if exists {
        eprintln!("ferry: hint: `--replace` replaces files that exist on the server");
    }
    close(client);
    worst.code()
}
