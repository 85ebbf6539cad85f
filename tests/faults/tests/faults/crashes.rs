//! Priority 4: crashes. A `ferry serve` child SIGKILLed in the middle of a large upload and
//! restarted on the same folder; a client that drops its connection mid-download, then
//! resumes from its `.ferry-part`.

use std::time::{Duration, Instant};

use ferry_fault_tests::{
    ChildServer, ClientKind, Dir, Fault, Impl, Mode, Proxy, RawSession, STAGING, TestServer,
    client_options, eventually, ferry_bin_or_skip, first_line, names_in, random_bytes,
};
use ferry_sync::client::{Client, ClientError, GetOptions};
use ferry_test_support::file_name;
use ferry_wire::Digest;

/// SIGKILL during an 8 MiB upload (4 MiB sent and staged): nothing visible; after a restart
/// on the same root the staging area is empty at once (SEC-8) and uploads work again.
#[test]
fn kill_server_mid_upload() {
    let Some(bin) = ferry_bin_or_skip() else {
        return;
    };
    for imp in Impl::ALL {
        let root = tempfile::tempdir().expect("tempdir");
        let staging = root.path().join(STAGING);
        let mut child = ChildServer::start(&bin, imp, root.path(), &[]);
        let data = random_bytes(3, 8 << 20);
        let mut s = RawSession::connect(child.addr);
        s.expect_greeting();
        s.send(format!("put {} new wait big.bin\n", data.len()).as_bytes());
        s.expect_line("go");
        for piece in data[..4 << 20].chunks(1 << 20) {
            s.send(format!("data {}\n", piece.len()).as_bytes());
            s.send(piece);
        }
        let staged = eventually(Duration::from_secs(5), || {
            std::fs::read_dir(&staging).is_ok_and(|rd| {
                rd.filter_map(Result::ok)
                    .any(|e| e.metadata().is_ok_and(|m| m.len() >= 3 << 20))
            })
        });
        assert!(staged, "{imp}: the upload never reached the staging area");
        child.kill();
        drop(s);
        let visible: Vec<_> = names_in(root.path())
            .into_iter()
            .filter(|n| n != STAGING)
            .collect();
        assert!(
            visible.is_empty(),
            "{imp}: visible after SIGKILL: {visible:?}"
        );
        let debris = names_in(&staging).len();
        // `ferry serve` opens the folder and removes the debris (SEC-8) before it prints
        // `listening on` (which `start` waits for): none is left once the line is out.
        let child = ChildServer::start(&bin, imp, root.path(), &[]);
        assert!(
            names_in(&staging).is_empty(),
            "{imp}: staging debris after `listening on`: {:?}",
            names_in(&staging)
        );
        let visible: Vec<_> = names_in(root.path())
            .into_iter()
            .filter(|n| n != STAGING)
            .collect();
        assert!(
            visible.is_empty(),
            "{imp}: visible after restart: {visible:?}"
        );
        let mut c = Client::connect_with(child.addr, &client_options()).expect("connect");
        let mut r = &data[..];
        c.put_from_reader(
            &file_name("big.bin"),
            data.len() as u64,
            &mut r,
            &Default::default(),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{imp}: put after restart: {e}"));
        assert!(std::fs::read(root.path().join("big.bin")).ok().as_deref() == Some(&data[..]));
        println!(
            "CRASH|{imp}|sigkill-mid-upload|{debris} staging file(s) left by the kill, 0 once the restarted server announced itself"
        );
    }
}

/// A client whose connection drops mid-download (the proxy cuts it after ~700 kB): the
/// client reports `Truncated`, keeps a `.ferry-part` and no destination; the server frees
/// the session (max_connections = 1: a new session fits); a resume completes with the
/// source's digest.
fn drop_mid_download_then_resume(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.max_connections = 1;
        c.stall_timeout = Duration::from_secs(1);
    });
    let data = random_bytes(5, 3 << 20);
    server.write_file("f.bin", &data);
    let local = tempfile::tempdir().expect("tempdir");
    let dest = local.path().join("f.bin");
    let part = local.path().join("f.bin.ferry-part");
    {
        let proxy = Proxy::start(
            server.addr,
            Fault {
                mode: Mode::Cut,
                dir: Dir::Down,
                at: 700_000,
            },
        );
        let mut c = ferry_fault_tests::AnyClient::connect(ClientKind::Sync, proxy.addr)
            .expect("connect through the proxy");
        match c.get("f.bin", &dest, &GetOptions::default()) {
            Err(ClientError::Truncated { received, expected }) => {
                assert!(
                    received > 0 && received < expected,
                    "{imp}: {received}/{expected}"
                )
            }
            other => panic!("{imp}: expected Truncated, got {other:?}"),
        }
    }
    assert!(!dest.exists(), "{imp}: destination written after a cut");
    let kept = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(kept > 0, "{imp}: no .ferry-part kept");
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || first_line(
            server.addr,
            Duration::from_secs(2)
        )
        .is_some_and(|(_, l)| l.starts_with("ferry/1"))),
        "{imp}: the dropped session's slot was never freed"
    );
    let freed = t0.elapsed();
    // The probe connections above must be gone before the single slot is free again.
    let mut c = None;
    assert!(eventually(Duration::from_secs(5), || {
        c = Client::connect_with(server.addr, &client_options()).ok();
        c.is_some()
    }));
    let mut c = c.expect("client");
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let rep = c
        .get_to_path(&file_name("f.bin"), &dest, &opts, &mut |_| {})
        .unwrap_or_else(|e| panic!("{imp}: resume: {e}"));
    assert_eq!(
        rep.resumed_from, kept,
        "{imp}: did not resume from the .ferry-part"
    );
    assert_eq!(rep.digest, Digest::of(&data), "{imp}: digest");
    assert!(
        std::fs::read(&dest).expect("dest") == data,
        "{imp}: resumed file differs"
    );
    assert!(!part.exists(), "{imp}: .ferry-part left after success");
    println!("CRASH|{imp}|client-drop+resume|slot free after {freed:?}, resumed from {kept}");
}

#[test]
fn drop_resume_threads() {
    drop_mid_download_then_resume(Impl::Threads);
}
#[test]
fn drop_resume_async_std() {
    drop_mid_download_then_resume(Impl::AsyncStd);
}
#[test]
fn drop_resume_tokio() {
    drop_mid_download_then_resume(Impl::Tokio);
}
#[test]
fn drop_resume_smol() {
    drop_mid_download_then_resume(Impl::Smol);
}
