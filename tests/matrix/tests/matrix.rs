//! The matrix: (a) every replayable `spec/examples` transcript against every server
//! implementation; (b) one fixed scenario through every client × server pair, printed as a
//! result matrix.

use std::fs;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry_matrix_tests::content::Content;
use ferry_matrix_tests::proxy::CutProxy;
use ferry_matrix_tests::{Impl, TestServer};
use ferry_sync::client::{ClientError, ClientOptions, GetOptions, PutOptions, part_path};
use ferry_test_support::{TestClient, examples_dir, replay_examples_on};
use ferry_wire::{Digest, FileName, PutMode};

/// Connects a client of `imp` with 30 s timeouts, over TLS with the server's key pinned when
/// `server` serves TLS.
fn connect(
    imp: Impl,
    server: &TestServer,
    addr: std::net::SocketAddr,
) -> Result<TestClient, ClientError> {
    let options = server.client_options(ClientOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..ClientOptions::default()
    });
    TestClient::connect_with(imp, addr, &options)
}

fn transcripts_on(imp: Impl) {
    let (ran, failures) = replay_examples_on(imp, &examples_dir());
    assert!(ran >= 20, "only {ran} replayable transcripts found");
    assert!(
        failures.is_empty(),
        "{imp}: {} of {ran} transcripts failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn transcripts_threads() {
    transcripts_on(Impl::Threads);
}

#[test]
fn transcripts_async_std() {
    transcripts_on(Impl::AsyncStd);
}

#[test]
fn transcripts_tokio() {
    transcripts_on(Impl::Tokio);
}

#[test]
fn transcripts_smol() {
    transcripts_on(Impl::Smol);
}

/// Size of the large file (random octets).
const LARGE: usize = 32 << 20;
/// Where the proxy cuts the download of the large file (mid-chunk).
const CUT_AT: u64 = (5 << 20) + 12_345;
/// Files sent in the pipelined batch.
const BATCH: usize = 24;

/// The scenario's local files, made once: `(name, content)`, the large one last.
fn files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        vec![
            ("射频仿真.pptx".into(), Content::new(3001, 1).bytes()),
            ("天线15.doc".into(), Content::new(15_000, 2).bytes()),
            (
                "my report (final).pdf".into(),
                Content::new(70_001, 3).bytes(),
            ),
            ("empty".into(), Vec::new()),
            ("large.bin".into(), Content::new(LARGE, 4).bytes()),
        ]
    })
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("a valid name")
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn err(what: &str) -> impl FnOnce(ClientError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The scenario for one pair, over TLS when `tls`. Returns a one-word summary for the matrix.
fn scenario(client: Impl, server_impl: Impl, tls: bool) -> Result<(), String> {
    let server = if tls {
        TestServer::start_tls(server_impl, |_| {})
    } else {
        TestServer::start_impl(server_impl)
    };
    let local = tempfile::tempdir().map_err(|e| e.to_string())?;
    let down = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut c = connect(client, &server, server.addr).map_err(err("connect"))?;

    // Uploads: the brief's names, an empty file, the large file (flow wait).
    for (n, data) in files() {
        let path = local.path().join(n);
        fs::write(&path, data).map_err(|e| e.to_string())?;
        let report = c
            .put_from_path(&path, None, &PutOptions::default(), &mut |_| {})
            .map_err(err(&format!("put {n}")))?;
        check(
            report.size == data.len() as u64 && report.digest == Digest::of(data),
            || format!("put {n}: report {report:?}"),
        )?;
        check(server.read_file(n).as_deref() == Some(&data[..]), || {
            format!("put {n}: the served file differs")
        })?;
    }

    // dir: bytewise order, sizes.
    let entries = c.dir().map_err(err("dir"))?;
    let mut want: Vec<(String, u64)> = files()
        .iter()
        .map(|(n, d)| (n.clone(), d.len() as u64))
        .collect();
    want.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let got: Vec<(String, u64)> = entries
        .iter()
        .map(|e| (e.name.to_string(), e.size))
        .collect();
    check(got == want, || format!("dir: {got:?}, expected {want:?}"))?;

    // Downloads of the small files, to paths and to a writer.
    for (n, data) in &files()[..4] {
        let dest = down.path().join(n);
        c.get_to_path(&name(n), &dest, &GetOptions::default(), &mut |_| {})
            .map_err(err(&format!("get {n}")))?;
        check(fs::read(&dest).ok().as_deref() == Some(&data[..]), || {
            format!("get {n}: wrong content")
        })?;
        let mut buf = Vec::new();
        c.get_to_writer(&name(n), &mut buf, &mut |_| {})
            .map_err(err(&format!("get {n} to a writer")))?;
        check(buf == *data, || {
            format!("get {n} to a writer: wrong content")
        })?;
    }

    // Create-only refuses an existing name (512); replace replaces it.
    let target = name("天线15.doc");
    let new_data = Content::new(777, 9).bytes();
    let new_only = PutOptions {
        mode: PutMode::New,
        eager: true,
    };
    match c.put_from_reader(&target, 777, &mut &new_data[..], &new_only, &mut |_| {}) {
        Err(ClientError::Refused(e)) if e.code.get() == 512 => {}
        other => return Err(format!("put new on an existing name: {other:?}")),
    }
    check(
        server.read_file("天线15.doc").as_deref() == Some(&files()[1].1[..]),
        || "a refused put changed the file".into(),
    )?;
    for eager in [true, false] {
        let data = Content::new(777 + usize::from(eager), 10).bytes();
        let replace = PutOptions {
            mode: PutMode::Replace,
            eager,
        };
        c.put_from_reader(
            &target,
            data.len() as u64,
            &mut &data[..],
            &replace,
            &mut |_| {},
        )
        .map_err(err("put replace"))?;
        let mut buf = Vec::new();
        c.get_to_writer(&target, &mut buf, &mut |_| {})
            .map_err(err("get after replace"))?;
        check(buf == data, || "replace: wrong content".into())?;
    }
    match c.put_from_reader(
        &name("brand new"),
        3,
        &mut &b"abc"[..],
        &new_only,
        &mut |_| {},
    ) {
        Ok(_) => {}
        Err(e) => return Err(format!("put new on a new name: {e}")),
    }

    // Pipelined batches: eager puts, then gets.
    let batch_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let batch: Vec<(PathBuf, FileName, Vec<u8>)> = (0..BATCH)
        .map(|i| {
            let data = Content::new(i * 997 % 40_000, 100 + i as u64).bytes();
            let n = format!("批 {i:02}.dat");
            let path = batch_dir.path().join(&n);
            fs::write(&path, &data).expect("write a batch file");
            (path, name(&n), data)
        })
        .collect();
    let uploads: Vec<(PathBuf, FileName)> = batch
        .iter()
        .map(|(p, n, _)| (p.clone(), n.clone()))
        .collect();
    let results = c.put_many(&uploads, &PutOptions::default(), &mut |_| {});
    check(results.iter().all(Result::is_ok), || {
        format!("put_many: {results:?}")
    })?;
    let names: Vec<FileName> = batch.iter().map(|(_, n, _)| n.clone()).collect();
    let got_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let results = c.get_many(&names, got_dir.path(), &GetOptions::default(), &mut |_| {});
    check(results.iter().all(Result::is_ok), || {
        format!("get_many: {results:?}")
    })?;
    for (_, n, data) in &batch {
        check(
            fs::read(got_dir.path().join(n.as_str())).ok().as_deref() == Some(&data[..]),
            || format!("get_many {n}: wrong content"),
        )?;
    }
    c.close().map_err(err("close"))?;

    // Resume after a cut: the proxy closes the download of the large file mid-way.
    let (large_name, large) = &files()[4];
    let dest = down.path().join(large_name);
    let proxy = CutProxy::start(server.addr, CUT_AT);
    // Over TLS the cut comes without close_notify: the session is truncated there (TLS-7).
    let mut cut = connect(client, &server, proxy.addr).map_err(err("connect via the proxy"))?;
    let opts = GetOptions::default();
    match cut.get_to_path(&name(large_name), &dest, &opts, &mut |_| {}) {
        Err(e) if e.ends_session() => {}
        other => return Err(format!("the cut download did not fail: {other:?}")),
    }
    drop(cut);
    let passed = proxy.finish();
    let part = part_path(&dest).map_err(|e| e.to_string())?;
    let partial = fs::read(&part).map_err(|e| format!("no .ferry-part after the cut: {e}"))?;
    check(
        !partial.is_empty() && partial.len() < large.len() && large.starts_with(&partial),
        || {
            format!(
                "the .ferry-part holds {} octets (the proxy passed {passed})",
                partial.len()
            )
        },
    )?;
    check(!dest.exists(), || {
        "the destination exists before the resume".into()
    })?;
    let mut c = connect(client, &server, server.addr).map_err(err("reconnect"))?;
    let resume = GetOptions {
        resume: true,
        retry_from_zero: false,
        ..GetOptions::default()
    };
    let report = c
        .get_to_path(&name(large_name), &dest, &resume, &mut |_| {})
        .map_err(err("resumed get"))?;
    check(
        report.resumed_from == partial.len() as u64
            && report.digest == Digest::of(large)
            && report.size == large.len() as u64,
        || format!("resume report {report:?} (partial {})", partial.len()),
    )?;
    let whole = fs::read(&dest).map_err(|e| e.to_string())?;
    check(whole == *large, || "the resumed file differs".into())?;
    check(!part.exists(), || "the .ferry-part is left over".into())?;
    c.close().map_err(err("close"))?;
    check(server.wait_staging_empty(), || {
        "staging area not empty".into()
    })?;
    server.stop().map_err(|e| format!("server: {e}"))
}

fn run_cell(client: Impl, server: Impl, tls: bool) -> (Result<(), String>, Duration) {
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| scenario(client, server, tls))).unwrap_or_else(|p| {
        Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".into()))
    });
    (r, start.elapsed())
}

/// Writes to the real stderr, past libtest's capture, so the matrix shows in every run.
fn show(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[test]
fn scenario_matrix() {
    matrix_of(false);
}

/// The same scenario, every pair over TLS (each server with a self-signed key, each client
/// pinning it): one TLS layer per family of drivers, so every pair is a real interop check.
#[test]
fn scenario_matrix_tls() {
    matrix_of(true);
}

fn matrix_of(tls: bool) {
    let _ = files();
    let started = Instant::now();
    let mut cells = Vec::new();
    for client in Impl::ALL {
        for server in Impl::ALL {
            let (r, t) = run_cell(client, server, tls);
            cells.push((client, server, r, t));
        }
    }
    let mut out = format!(
        "\nferry client × server matrix{} — scenario: 射频仿真.pptx, 天线15.doc, \
         my report (final).pdf, empty, {} MiB random; 512 vs replace; cut at {} octets \
         + resume; pipelined batches of {BATCH} ({:.1} s)\n",
        if tls { " over TLS" } else { "" },
        LARGE >> 20,
        CUT_AT,
        started.elapsed().as_secs_f64()
    );
    out.push_str(&format!("{:<16}", "client \\ server"));
    for s in Impl::ALL {
        out.push_str(&format!("| {s:<12}"));
    }
    out.push('\n');
    for client in Impl::ALL {
        out.push_str(&format!("{client:<16}"));
        for (_, _, r, t) in cells.iter().filter(|c| c.0 == client) {
            let mark = if r.is_ok() { "ok" } else { "FAIL" };
            out.push_str(&format!("| {mark:<4} {:>5.1}s ", t.as_secs_f64()));
        }
        out.push('\n');
    }
    let failures: Vec<String> = cells
        .iter()
        .filter_map(|(c, s, r, _)| {
            r.as_ref()
                .err()
                .map(|e| format!("{c} client × {s} server: {e}"))
        })
        .collect();
    for f in &failures {
        out.push_str(&format!("  {f}\n"));
    }
    show(&out);
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One `.ferry-part` left by client `cut` (download cut by the proxy) and resumed by client
/// `resume`: both clients must use the same partial-file path and verify the whole file.
fn cross_resume(cut: Impl, resume: Impl, server_impl: Impl) -> Result<(), String> {
    let server = TestServer::start_impl(server_impl);
    let data = Content::new((6 << 20) + 3, 77).bytes();
    server.write_file("resume me.bin", &data);
    let down = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dest = down.path().join("resume me.bin");
    let proxy = CutProxy::start(server.addr, (2 << 20) + 999);
    let mut c = connect(cut, &server, proxy.addr).map_err(err("connect via the proxy"))?;
    match c.get_to_path(
        &name("resume me.bin"),
        &dest,
        &GetOptions::default(),
        &mut |_| {},
    ) {
        Err(e) if e.ends_session() => {}
        other => return Err(format!("the cut download did not fail: {other:?}")),
    }
    drop(c);
    proxy.finish();
    let part = part_path(&dest).map_err(|e| e.to_string())?;
    let held = fs::metadata(&part)
        .map_err(|e| format!("no .ferry-part: {e}"))?
        .len();
    let mut c = connect(resume, &server, server.addr).map_err(err("connect"))?;
    let opts = GetOptions {
        resume: true,
        retry_from_zero: false,
        ..GetOptions::default()
    };
    let report = c
        .get_to_path(&name("resume me.bin"), &dest, &opts, &mut |_| {})
        .map_err(err("resume"))?;
    check(report.resumed_from == held && held > 0, || {
        format!(
            "resumed from {} with {held} octets held",
            report.resumed_from
        )
    })?;
    check(fs::read(&dest).ok().as_deref() == Some(&data[..]), || {
        "the resumed file differs".into()
    })?;
    c.close().map_err(err("close"))?;
    server.stop().map_err(|e| format!("server: {e}"))
}

#[test]
fn resume_across_clients() {
    let mut out = String::from(
        "\n.ferry-part left by a cut download (rows) resumed by another client (columns); \
         server rotates\n",
    );
    out.push_str(&format!("{:<16}", "cut \\ resumed"));
    for s in Impl::ALL {
        out.push_str(&format!("| {s:<12}"));
    }
    out.push('\n');
    let mut failures = Vec::new();
    for (i, cut) in Impl::ALL.into_iter().enumerate() {
        out.push_str(&format!("{cut:<16}"));
        for (j, resume) in Impl::ALL.into_iter().enumerate() {
            let server = Impl::ALL[(i + j) % 4];
            let start = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| cross_resume(cut, resume, server)))
                .unwrap_or_else(|_| Err("panicked".into()));
            let mark = if r.is_ok() { "ok" } else { "FAIL" };
            out.push_str(&format!(
                "| {mark:<4} {:>5.1}s ",
                start.elapsed().as_secs_f64()
            ));
            if let Err(e) = r {
                failures.push(format!(
                    "cut by {cut}, resumed by {resume}, {server} server: {e}"
                ));
            }
        }
        out.push('\n');
    }
    for f in &failures {
        out.push_str(&format!("  {f}\n"));
    }
    show(&out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
