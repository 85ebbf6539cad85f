//! The one-shot commands: `dir`, `get`, `put`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, PutOptions, local_path, name_for_local, part_path,
    visible,
};
use ferry_wire::{Code, Entry, FileName, NameError, PutMode, SkippedEntry};

use crate::addr::ServerAddr;
use crate::engine::AnyClient;
use crate::exit::{self, Worst};
use crate::hints::{self, Stage};
use crate::progress::Bars;
use crate::{ClientArgs, TlsArgs};
use ferry_tls::{ClientTls, Trust};

/// Prints `ferry: WHAT: ERROR` on stderr.
pub(crate) fn report(what: &str, e: &ClientError) {
    eprintln!("ferry: {what}: {e}");
}

/// Prints `ferry: WHAT: ERROR` on stderr, with what the error means and what to try
/// ([`hints::explain`]).
pub(crate) fn report_in_session(what: &str, e: &ClientError, how: &ClientArgs, addr: &ServerAddr) {
    let text = hints::explain(e, addr, how.timeout, Stage::Session);
    eprintln!("ferry: {what}: {text}");
}

/// The client's options for `how` and `addr`: `--timeout` bounds the connect and every wait
/// for the server (its greeting, a reply, taking octets), `--min-rate` the pace after it; a
/// `ferrys://` address gets TLS verified as `how.tls` says. An error is a usage error.
pub(crate) fn options(how: &ClientArgs, addr: &ServerAddr) -> Result<ClientOptions, String> {
    Ok(ClientOptions {
        connect_timeout: Some(how.timeout),
        read_timeout: Some(how.timeout),
        write_timeout: Some(how.timeout),
        max_get_size: how.max_get_size,
        min_rate: how.min_rate,
        tls: client_tls(&how.tls, addr)?,
        login: crate::login::login(&how.auth, addr)?,
        ..ClientOptions::default()
    })
}

/// The TLS side of a connection to `addr` (`None` for a plain address). Never a fallback:
/// a `ferrys://` address is TLS or nothing (TLS-14).
fn client_tls(a: &TlsArgs, addr: &ServerAddr) -> Result<Option<ClientTls>, String> {
    if !addr.tls {
        if a.fingerprint.is_some() || a.ca.is_some() || a.insecure {
            return Err(format!(
                "--fingerprint, --ca and --insecure are for ferry/1 over TLS: give the server \
                 as ferrys://{addr}"
            ));
        }
        return Ok(None);
    }
    let trust = if let Some(f) = a.fingerprint {
        Trust::Fingerprint(f)
    } else if let Some(ca) = &a.ca {
        Trust::Ca(ca.clone())
    } else if a.insecure {
        Trust::Insecure
    } else {
        let path = a
            .known_hosts
            .clone()
            .or_else(ferry_tls::known_hosts::default_path)
            .ok_or_else(|| {
                "no place for known_hosts (neither XDG_CONFIG_HOME nor HOME is set): give \
                 --known-hosts FILE or --fingerprint"
                    .to_owned()
            })?;
        Trust::FirstUse(path)
    };
    ClientTls::new(&addr.host, addr.port, trust)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Shows on stderr what the TLS layer says the user must see: a key remembered on first use
/// (TLS-13), an unverified server (`--insecure`).
pub(crate) fn show_tls_notices(options: &ClientOptions) {
    if let Some(tls) = &options.tls {
        for notice in tls.take_notices() {
            eprintln!("ferry: {notice}");
        }
    }
}

/// Connects and reads the greeting; on failure reports it, with a hint, and returns the
/// exit code.
pub(crate) fn connect(how: &ClientArgs, addr: &ServerAddr) -> Result<AnyClient, u8> {
    connect_explained(how, addr).map_err(|(code, _)| code)
}

/// [`connect`], also returning the message of a failure.
fn connect_explained(how: &ClientArgs, addr: &ServerAddr) -> Result<AnyClient, (u8, String)> {
    let options = options(how, addr).map_err(|e| {
        eprintln!("ferry: {e}");
        (exit::USAGE, e)
    })?;
    let connected = AnyClient::connect(how.implementation, addr.target(), &options);
    show_tls_notices(&options);
    connected.map_err(|e| {
        let text = format!(
            "cannot start a session with {addr}: {}",
            hints::explain(&e, addr, how.timeout, Stage::Connect)
        );
        eprintln!("ferry: {text}");
        (exit::for_error(&e), text)
    })
}

/// Ends the session politely if it is still open; a failure here changes nothing that
/// was done.
pub(crate) fn close(client: AnyClient) {
    if client.is_open()
        && let Err(e) = client.close()
    {
        tracing::debug!("close: {e}");
    }
}

/// Writes a listing as aligned columns: size, modification time (UTC), name (with invisible
/// characters made visible).
pub(crate) fn print_listing(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
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
pub(crate) fn dir(how: ClientArgs, addr: &ServerAddr, json: bool) -> u8 {
    let mut client = match connect(&how, addr) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let listing = match client.dir_listing() {
        Ok(listing) => listing,
        Err(e) => {
            report_in_session("dir", &e, &how, addr);
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
pub(crate) fn warn_skipped(s: &SkippedEntry) {
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
pub(crate) fn shown_octets(name: &[u8], all_non_ascii: bool) -> String {
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
    if let Ok(part) = part_path(dest)
        && fs::symlink_metadata(&part).is_ok_and(|m| m.is_file() && m.len() > 0)
    {
        eprintln!(
            "ferry: partial data kept in {}; `ferry get --continue` resumes it",
            part.display()
        );
    }
}

/// Whether `path` can only name a folder: it ends with a path separator (`downloads/`), or
/// its last component is `.` or `..`. (`Path` itself forgets a trailing separator:
/// `Path::new("downloads/").file_name()` is `downloads`.)
pub(crate) fn names_folder(path: &Path) -> bool {
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

/// One line of `ferry get --json` and `ferry put --json`.
#[derive(Debug, serde::Serialize)]
struct FileOutcome {
    /// The name on the server.
    name: String,
    /// get: where the file was (or would have been) saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// put: the local file.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    /// The file's size (null after a failure).
    bytes: Option<u64>,
    /// Its verified digest, `xxh3-128:…` (null after a failure).
    digest: Option<String>,
    /// Seconds the file occupied the connection, from the end of the previous file (or
    /// from the start of the batch) to its last octet.
    seconds: f64,
    /// `ok` or `failed`.
    outcome: &'static str,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The server's code, when it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

impl FileOutcome {
    fn failed(name: &str, e: &ClientError, seconds: f64) -> Self {
        Self::failed_with(name, e.to_string(), e.code().map(|c| c.get()), seconds)
    }

    fn failed_with(name: &str, error: String, code: Option<u16>, seconds: f64) -> Self {
        FileOutcome {
            name: name.to_owned(),
            path: None,
            file: None,
            bytes: None,
            digest: None,
            seconds,
            outcome: "failed",
            error: Some(error),
            code,
        }
    }

    fn ok(name: &str, bytes: u64, digest: String, seconds: f64) -> Self {
        FileOutcome {
            name: name.to_owned(),
            path: None,
            file: None,
            bytes: Some(bytes),
            digest: Some(digest),
            seconds,
            outcome: "ok",
            error: None,
            code: None,
        }
    }
}

/// Where the per-file results go on stdout: JSON lines with `--json`, one line for a person
/// when stdout is a terminal, nothing otherwise (a script asks with `--json`).
struct Outcomes {
    json: bool,
    human: bool,
}

impl Outcomes {
    fn new(json: bool) -> Self {
        Outcomes {
            json,
            human: !json && io::stdout().is_terminal(),
        }
    }

    /// Writes one result; `verb` is `received` or `sent`. A closed stdout is not an error
    /// of the transfer: the files are where they are.
    fn emit(&self, o: &FileOutcome, verb: &str) {
        let mut out = io::stdout().lock();
        if self.json {
            if let Ok(line) = serde_json::to_string(o) {
                let _ = writeln!(out, "{line}");
            }
        } else if self.human && o.outcome == "ok" {
            // `received a.txt to d/a.txt (5 B in 0.01s)`, `sent a.txt (5 B in 0.01s)`, or
            // `sent notes.md as n.md (…)` when the name differs from the file's.
            let local = match (&o.path, &o.file) {
                (Some(p), _) => format!(" to {p}"),
                (None, Some(f)) if Path::new(f).file_name() != Some(o.name.as_ref()) => {
                    format!(" from {f}")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{verb} {}{local} ({} in {:.2}s)",
                visible(&o.name),
                ferry_bench::units::size_text(o.bytes.unwrap_or(0)),
                o.seconds
            );
        }
        let _ = out.flush();
    }
}

/// Per-file times from the progress reports of a batch: a file's time runs from the last
/// report before its first one (or the start of the batch) to its own last report.
struct Timing {
    last: Instant,
    current: Option<String>,
    files: HashMap<String, (Instant, Instant)>,
}

impl Timing {
    fn start() -> Self {
        Timing {
            last: Instant::now(),
            current: None,
            files: HashMap::new(),
        }
    }

    fn see(&mut self, name: &FileName) {
        let now = Instant::now();
        if self.current.as_deref() != Some(name.as_str()) {
            self.current = Some(name.as_str().to_owned());
            self.files
                .entry(name.as_str().to_owned())
                .or_insert((self.last, now));
        }
        if let Some(t) = self.files.get_mut(name.as_str()) {
            t.1 = now;
        }
        self.last = now;
    }

    /// Seconds for `name` (rounded to microseconds), 0 if it had no progress report.
    fn seconds(&self, name: &str) -> f64 {
        self.files
            .get(name)
            .map_or(0.0, |(a, b)| ((*b - *a).as_secs_f64() * 1e6).round() / 1e6)
    }
}

/// `ferry get ADDR NAME... [-o PATH] [--continue] [--json]`.
pub(crate) fn get(
    how: ClientArgs,
    addr: &ServerAddr,
    names: &[FileName],
    output: Option<&Path>,
    resume: bool,
    json: bool,
) -> u8 {
    let opts = GetOptions {
        resume,
        ..GetOptions::default()
    };
    let outcomes = Outcomes::new(json);
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
                outcomes.emit(&FileOutcome::failed(name.as_str(), &e, 0.0), "");
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
    let dest_of = |name: &FileName| match &plan {
        Plan::One(dest) => Some(dest.clone()),
        Plan::Many(dir) => local_path(dir, name).ok(),
    };
    let mut client = match connect_explained(&how, addr) {
        Ok(c) => c,
        Err((code, text)) => {
            if json {
                for name in names {
                    let mut o = FileOutcome::failed_with(name.as_str(), text.clone(), None, 0.0);
                    o.path = dest_of(name).map(|p| p.display().to_string());
                    outcomes.emit(&o, "");
                }
            }
            return code;
        }
    };
    let mut bars = Bars::new();
    let mut timing = Timing::start();
    let mut progress = |p: ferry_sync::client::Progress<'_>| {
        timing.see(p.name);
        bars.update(p);
    };
    let results = match &plan {
        Plan::One(dest) => vec![client.get_to_path(&names[0], dest, &opts, &mut progress)],
        Plan::Many(dir) => client.get_many(names, dir, &opts, &mut progress),
    };
    bars.finish();
    let mut worst = Worst::default();
    for (name, result) in names.iter().zip(results) {
        let seconds = timing.seconds(name.as_str());
        let dest = dest_of(name);
        let mut o = match result {
            Ok(r) => FileOutcome::ok(name.as_str(), r.size, r.digest.to_string(), seconds),
            Err(e) => {
                report_in_session(&format!("get {}", visible(name.as_str())), &e, &how, addr);
                worst.add(exit::for_error(&e));
                if let Some(dest) = &dest {
                    partial_hint(dest);
                }
                FileOutcome::failed(name.as_str(), &e, seconds)
            }
        };
        o.path = dest.map(|p| p.display().to_string());
        outcomes.emit(&o, "received");
    }
    close(client);
    worst.code()
}

/// `ferry put ADDR FILE... [--as NAME] [--replace] [--json]`.
pub(crate) fn put(
    how: ClientArgs,
    addr: &ServerAddr,
    files: &[PathBuf],
    as_name: Option<FileName>,
    replace: bool,
    json: bool,
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
    let outcomes = Outcomes::new(json);
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
                let mut o = FileOutcome::failed(&file.to_string_lossy(), &e, 0.0);
                o.file = Some(file.display().to_string());
                outcomes.emit(&o, "");
            }
        }
    }
    if batch.is_empty() {
        return worst.code();
    }
    let mut client = match connect_explained(&how, addr) {
        Ok(c) => c,
        Err((code, text)) => {
            if json {
                for (file, name) in &batch {
                    let mut o = FileOutcome::failed_with(name.as_str(), text.clone(), None, 0.0);
                    o.file = Some(file.display().to_string());
                    outcomes.emit(&o, "");
                }
            }
            worst.add(code);
            return worst.code();
        }
    };
    let mut bars = Bars::new();
    let mut timing = Timing::start();
    let results = client.put_many(&batch, &opts, &mut |p| {
        timing.see(p.name);
        bars.update(p);
    });
    bars.finish();
    let mut exists = false;
    for ((file, name), result) in batch.iter().zip(results) {
        let seconds = timing.seconds(name.as_str());
        let mut o = match result {
            Ok(r) => FileOutcome::ok(r.name.as_str(), r.size, r.digest.to_string(), seconds),
            Err(e) => {
                report_in_session(&format!("put {}", file.display()), &e, &how, addr);
                worst.add(exit::for_error(&e));
                exists |= e.code() == Some(Code::EXISTS);
                FileOutcome::failed(name.as_str(), &e, seconds)
            }
        };
        o.file = Some(file.display().to_string());
        outcomes.emit(&o, "sent");
    }
    if exists {
        eprintln!("ferry: hint: `--replace` replaces files that exist on the server");
    }
    close(client);
    worst.code()
}
