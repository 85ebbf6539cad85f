//! The audit log file (`ferry serve --audit-log FILE`, #16): one JSON object per line for
//! every record of every session (`ferry_proto::audit`), appended by one writer thread.
//!
//! A line (keys in this order; `to`, `entries`, `code`, `error` and `reason` only where they
//! apply):
//!
//! ```json
//! {"time":"2026-12-02T09:34:59.123Z","user":"alice","peer":"192.0.2.7:4711","op":"put","name":"a \"b\" \\c","bytes":9,"result":"ok","duration_ms":1.5}
//! {"time":"2026-12-02T09:35:00.001Z","user":"carol","peer":"192.0.2.7:4711","op":"auth","name":null,"bytes":0,"result":"err","code":535,"error":"auth-failed","duration_ms":0.02}
//! ```
//!
//! - `time`: when the record was made (the operation's end), UTC, RFC 3339 with
//!   milliseconds.
//! - `user`: the session's user; `null` for a session that has not authenticated (anonymous
//!   access, or a server without `--users`). For `op` `auth`, the user name tried, `null` when
//!   none could be read.
//! - `peer`: the client's address and port.
//! - `op`: `auth`, `dir`, `get`, `put`, the `tree` extension's `list`, `mkdir`, `rmdir`,
//!   `delete`, `rename`, `end` (the session's end); `lost` (see below).
//! - `name`: the file name (or path) of a get or put, the path of a `mkdir`, `rmdir` or
//!   `delete`, the folder of a `list` (`.`: the served folder), what a `rename` moves;
//!   JSON-escaped (`null` otherwise).
//! - `to`: where a `rename` moves `name` to (only for `rename`):
//!   `{…,"op":"rename","name":"a/b","to":"c/b",…}`.
//! - `bytes`: payload octets moved (see `ferry_proto::audit::Record::bytes`); `entries`: the
//!   entries of a `dir` or `list`.
//! - `result`: `ok`; `err` with `code` and `error` (`err 512 exists`, `abort 430 changed`, a
//!   closing error such as `421 timeout`); or `cut` with a `reason` (the session ended before
//!   an answer: the client closed the connection, the connection ended).
//! - `duration_ms`: from the request to its answer, in milliseconds (microsecond precision).
//!
//! Sessions never wait for the disk: a record becomes its line in the session's thread or
//! task and goes through a queue of [`QUEUE`] lines to the writer thread, which appends what
//! has gathered with one write (so lines never interleave, with each other or with another
//! process appending to the file). When the queue is full (the disk is slower than the
//! sessions) or a write fails (the disk is full), records are lost, not waited for: an
//! audit must not stop the server, nor let a client slow every session down. Nothing is lost
//! silently: the first loss is logged as an error in the server's log at once, and once the
//! writer can write again, a line `{"time":…,"op":"lost","records":N}` in the audit log
//! itself says how many records are missing there (and the server log says it too). Lines
//! are not fsynced one by one (a crash of the machine may lose the last seconds); the file is
//! synced when the log is closed.
//!
//! The file is opened for appending, created with mode 0600 (it names users and files);
//! [`AuditFile::reopen`] opens the path again (SIGHUP, after logrotate moved the file away).

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::audit::{Audit, AuditSink, Outcome, Record};
use ferry_wire::Timestamp;

/// How many lines may wait for the writer; beyond, records are lost (and counted).
pub const QUEUE: usize = 16 * 1024;

/// The most octets the writer gathers for one write.
const BATCH: usize = 256 * 1024;

/// The audit log file: an [`Audit`] sink (clone it freely; every clone feeds the same
/// writer). See the module documentation.
#[derive(Debug, Clone)]
pub struct AuditFile {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the sessions and the writer share.
#[derive(Debug, Default)]
struct Shared {
    /// Open the path again before the next write.
    reopen: AtomicBool,
    /// Records lost and not yet reported in the file.
    lost: AtomicU64,
    /// The log was closed: records are lost.
    closed: AtomicBool,
}

impl Shared {
    /// Counts a lost record; the first of a run is logged at once.
    fn lose(&self, n: u64, why: &'static str) {
        if self.lost.fetch_add(n, Ordering::AcqRel) == 0 {
            tracing::error!(
                why,
                "audit records lost (the audit log says how many once it can be written)"
            );
        }
    }
}

enum Msg {
    Line(Vec<u8>),
    /// Look at the flags (reopen) without a line.
    Wake,
    /// Write what came before, sync, stop.
    Close,
}

impl AuditFile {
    /// Opens (creating with mode 0600) `path` for appending and starts the writer thread.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = open(path)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let writer = {
            let shared = Arc::clone(&shared);
            let path = path.to_owned();
            std::thread::Builder::new()
                .name("ferry-audit".into())
                .spawn(move || write_lines(file, &path, &rx, &shared))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                tx,
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This log as `ferry_store::ServerConfig::audit`.
    pub fn sink(&self) -> AuditSink {
        AuditSink(Arc::new(self.clone()))
    }

    /// Opens the path again before the next line (after logrotate renamed the file: SIGHUP).
    /// Should that fail, the writer keeps the file it has and logs why.
    pub fn reopen(&self) {
        self.inner.shared.reopen.store(true, Ordering::Release);
        // A full queue wakes the writer anyway.
        let _ = self.inner.tx.try_send(Msg::Wake);
    }

    /// Writes the lines queued so far, syncs the file and stops the writer; records that come
    /// after are lost (and logged). Waits for the writer. Idempotent.
    pub fn close(&self) {
        self.inner.shared.closed.store(true, Ordering::Release);
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = self.inner.tx.send(Msg::Close);
            let _ = writer.join();
        }
    }
}

impl Audit for AuditFile {
    fn record(&self, record: Record) {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return shared.lose(1, "a record came after the audit log was closed");
        }
        let line = encode(&record, SystemTime::now());
        match self.inner.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                shared.lose(1, "the audit log's writer is behind (queue full)")
            }
            Err(TrySendError::Disconnected(_)) => {
                shared.lose(1, "the audit log's writer has stopped")
            }
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The writer thread: gathers the lines queued, appends them with one write.
fn write_lines(mut file: File, path: &Path, rx: &Receiver<Msg>, shared: &Shared) {
    let mut out = Vec::new();
    // A write failed (perhaps midway through a line): the next one starts a new line, and
    // the failure is logged once until a write succeeds.
    let mut failing = false;
    while let Ok(first) = rx.recv() {
        let mut batch = Batch::default();
        batch.add(first);
        while batch.body.len() < BATCH && !batch.close {
            match rx.try_recv() {
                Ok(msg) => batch.add(msg),
                Err(_) => break,
            }
        }
        let Batch { body, lines, close } = batch;
        if shared.reopen.swap(false, Ordering::AcqRel) {
            match open(path) {
                Ok(f) => {
                    file = f;
                    tracing::info!(path = %path.display(), "audit log reopened");
                }
                Err(e) => tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "cannot reopen the audit log; writing on to the file open before"
                ),
            }
        }
        let lost = shared.lost.swap(0, Ordering::AcqRel);
        out.clear();
        if failing {
            out.push(b'\n');
        }
        if lost > 0 {
            out.extend_from_slice(&lost_line(lost, SystemTime::now()));
        }
        out.extend_from_slice(&body);
        if out.len() > usize::from(failing) {
            match file.write_all(&out) {
                Ok(()) => {
                    if lost > 0 {
                        tracing::error!(lost, "audit records lost; the audit log says so");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(
                            path = %path.display(),
                            error = %e,
                            "cannot write the audit log: records are lost until it can"
                        );
                    }
                    failing = true;
                    shared.lost.fetch_add(lost + lines, Ordering::AcqRel);
                }
            }
        }
        if close {
            if let Err(e) = file.sync_all() {
                tracing::error!(path = %path.display(), error = %e, "cannot sync the audit log");
            }
            break;
        }
    }
    let lost = shared.lost.load(Ordering::Acquire);
    if lost > 0 {
        tracing::error!(lost, "audit records lost and not in the audit log");
    }
}

/// What the writer gathered for one write.
#[derive(Default)]
struct Batch {
    body: Vec<u8>,
    lines: u64,
    close: bool,
}

impl Batch {
    fn add(&mut self, msg: Msg) {
        match msg {
            Msg::Line(line) => {
                self.body.extend_from_slice(&line);
                self.lines += 1;
            }
            Msg::Wake => {}
            Msg::Close => self.close = true,
        }
    }
}

/// One line of the audit log.
#[derive(serde::Serialize)]
struct Line<'a> {
    time: &'a str,
    user: Option<&'a str>,
    peer: Option<String>,
    op: &'static str,
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    duration_ms: f64,
}

/// `record` as a line of the audit log (with its LF), made at `time`.
pub fn encode(record: &Record, time: SystemTime) -> Vec<u8> {
    let (result, code, reason) = match record.outcome {
        Outcome::Ok => ("ok", None, None),
        Outcome::Err(code) => ("err", Some(code.get()), None),
        Outcome::Cut(why) => ("cut", None, Some(why)),
    };
    let micros = u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX);
    let line = Line {
        time: &rfc3339_millis(time),
        user: record.user.as_deref(),
        peer: record.peer.map(|p| p.to_string()),
        op: record.operation.as_str(),
        name: record.name.as_deref(),
        to: record.to.as_deref(),
        bytes: record.bytes,
        entries: record.entries,
        result,
        code,
        error: record.outcome.code_name(),
        reason,
        duration_ms: micros as f64 / 1000.0,
    };
    finish(serde_json::to_vec(&line))
}

/// The line that says `n` records are missing before it.
fn lost_line(n: u64, time: SystemTime) -> Vec<u8> {
    finish(serde_json::to_vec(&serde_json::json!({
        "time": rfc3339_millis(time),
        "op": "lost",
        "records": n,
    })))
}

fn finish(json: serde_json::Result<Vec<u8>>) -> Vec<u8> {
    // Strings, numbers and nulls always serialize.
    let mut line = json.unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// `t` in UTC as RFC 3339 with milliseconds: `2026-12-02T09:34:59.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let (y, mo, d, h, mi, s) = Timestamp::from_system_time(t).to_fields();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ferry_proto::audit::Operation;
    use ferry_wire::Code;

    use super::*;

    fn record(name: Option<&str>, outcome: Outcome) -> Record {
        Record {
            operation: Operation::Put,
            user: Some("alice".into()),
            peer: Some("[2001:db8::1]:4711".parse().expect("address")),
            name: name.map(str::to_owned),
            to: None,
            bytes: 9,
            entries: None,
            outcome,
            duration: Duration::from_micros(1500),
        }
    }

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis)
    }

    fn parse(line: &[u8]) -> serde_json::Value {
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        serde_json::from_slice(line).expect("JSON")
    }

    #[test]
    fn times_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(at(951_782_400, 7)),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(
            rfc3339_millis(at(1_796_203_699, 123)),
            "2026-12-02T09:28:19.123Z"
        );
    }

    #[test]
    fn a_record_is_one_json_line_with_every_field() {
        let line = encode(&record(Some("f.txt"), Outcome::Ok), at(0, 5));
        assert_eq!(
            String::from_utf8(line).expect("UTF-8"),
            "{\"time\":\"1970-01-01T00:00:00.005Z\",\"user\":\"alice\",\"peer\":\"[2001:db8::1]:4711\",\
             \"op\":\"put\",\"name\":\"f.txt\",\"bytes\":9,\"result\":\"ok\",\"duration_ms\":1.5}\n"
        );
    }

    #[test]
    fn a_rename_records_where_to_and_a_list_its_entries() {
        let rename = Record {
            operation: Operation::Rename,
            name: Some("a/b".into()),
            to: Some("c \"d\"/b".into()),
            bytes: 0,
            ..record(None, Outcome::Ok)
        };
        let line = String::from_utf8(encode(&rename, at(0, 5))).expect("UTF-8");
        assert!(
            line.contains(
                "\"op\":\"rename\",\"name\":\"a/b\",\"to\":\"c \\\"d\\\"/b\",\"bytes\":0,"
            ),
            "{line}"
        );
        let v = parse(line.as_bytes());
        assert_eq!(
            (v["name"].as_str(), v["to"].as_str()),
            (Some("a/b"), Some("c \"d\"/b"))
        );
        let list = Record {
            operation: Operation::List,
            name: Some(".".into()),
            bytes: 0,
            entries: Some(3),
            outcome: Outcome::Err(ferry_wire::tree::WRONG_KIND),
            ..record(None, Outcome::Ok)
        };
        let v = parse(&encode(&list, at(0, 0)));
        assert_eq!(v["op"], "list");
        assert_eq!(v["entries"], 3);
        assert_eq!(
            (v["code"].as_u64(), v["error"].as_str()),
            (Some(518), Some("wrong-kind"))
        );
        assert!(v.get("to").is_none(), "to only for rename");
    }

    #[test]
    fn names_with_quotes_backslashes_spaces_and_unicode_come_back_unchanged() {
        for name in [
            "a \"quoted\" name",
            "back\\slash\\",
            "  spaces  ",
            "naïve café ☕ 𝄞",
            "\u{2028}sep\u{7f}",
            "{\"op\":\"forged\"}",
        ] {
            let v = parse(&encode(&record(Some(name), Outcome::Ok), at(0, 0)));
            assert_eq!(v["name"], name);
            assert_eq!(v["op"], "put");
        }
    }

    #[test]
    fn errors_carry_code_and_name_and_cuts_a_reason() {
        let v = parse(&encode(&record(None, Outcome::Err(Code::EXISTS)), at(0, 0)));
        assert_eq!(v["result"], "err");
        assert_eq!(v["code"], 512);
        assert_eq!(v["error"], "exists");
        assert_eq!(v["name"], serde_json::Value::Null);
        let auth = ferry_wire::auth::AUTH_FAILED;
        let v = parse(&encode(&record(None, Outcome::Err(auth)), at(0, 0)));
        assert_eq!(
            (v["code"].as_u64(), v["error"].as_str()),
            (Some(535), Some("auth-failed"))
        );
        let v = parse(&encode(&record(None, Outcome::Cut("why")), at(0, 0)));
        assert_eq!(v["result"], "cut");
        assert_eq!(v["reason"], "why");
        assert!(v.get("code").is_none());
        let mut anonymous = record(None, Outcome::Ok);
        anonymous.user = None;
        anonymous.peer = None;
        let v = parse(&encode(&anonymous, at(0, 0)));
        assert_eq!((v["user"].is_null(), v["peer"].is_null()), (true, true));
    }

    #[test]
    fn lost_records_are_counted_in_the_file_before_the_next_line() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("audit.log");
        let log = AuditFile::open(&path).expect("open");
        // As when the queue was full: three records lost.
        log.inner.shared.lose(3, "test");
        log.record(record(Some("next"), Outcome::Ok));
        log.close();
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            (lines[0]["op"].as_str(), lines[0]["records"].as_u64()),
            (Some("lost"), Some(3))
        );
        assert_eq!(lines[1]["name"], "next");
    }

    #[test]
    fn a_full_disk_loses_records_counted_without_blocking() {
        // Linux's /dev/full: every write fails with ENOSPC.
        let log = AuditFile::open(Path::new("/dev/full")).expect("open /dev/full");
        for _ in 0..5 {
            log.record(record(Some("f"), Outcome::Ok));
        }
        log.close();
        assert_eq!(log.inner.shared.lost.load(Ordering::Acquire), 5);
    }

    #[test]
    fn the_file_gets_every_line_is_0600_and_is_reopened_after_a_rename() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("audit.log");
        let log = AuditFile::open(&path).expect("open");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for i in 0..1000 {
            log.record(record(Some(&format!("f{i}")), Outcome::Ok));
        }
        // logrotate: rename, then SIGHUP.
        let rotated = dir.path().join("audit.log.1");
        std::fs::rename(&path, &rotated).expect("rename");
        log.reopen();
        // The writer may still be writing the first records to the renamed file; those
        // after the reopen go to the new one.
        for i in 1000..1010 {
            log.record(record(Some(&format!("f{i}")), Outcome::Ok));
        }
        log.close();
        let mut names = Vec::new();
        for p in [&rotated, &path] {
            for line in std::fs::read_to_string(p).expect("read").lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                names.push(v["name"].as_str().expect("name").to_owned());
            }
        }
        let want: Vec<String> = (0..1010).map(|i| format!("f{i}")).collect();
        assert_eq!(names, want, "every record, once, in order");
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .contains("\"f1009\""),
            "the last records are in the new file"
        );
        // After close, records are lost (and logged), not written.
        log.record(record(Some("late"), Outcome::Ok));
        assert!(
            !std::fs::read_to_string(&path)
                .expect("read")
                .contains("late")
        );
    }
}
