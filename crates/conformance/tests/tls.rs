//! The runner over TLS (spec section 15): every server case, and the TLS cases, against the
//! threaded reference server behind a TLS-terminating relay (`common/relay.rs`: rustls with
//! `ferry_tls::ServerTls`, the session relayed to a plain `ferry-sync` server), until the
//! reference servers speak TLS themselves. The relay with deliberate faults shows that the
//! TLS cases catch them; against a plain server the TLS cases are `unimplemented`.

use std::time::Duration;

use ferry_conformance::{RunOptions, ServerTarget, Verdict, check_server, run_server};
use ferry_test_support::TestServer;
use ferry_tls::{ClientTls, Fingerprint, ServerTls, Trust};

mod common;
#[path = "common/relay.rs"]
mod relay;

use relay::{Faults, Relay};

/// Cases known not to pass over the relay: (case ID, reason).
const KNOWN: &[(&str, &str)] = &[];

fn self_signed() -> (tempfile::TempDir, ServerTls) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, _) = ServerTls::self_signed(&dir.path().join("tls")).expect("self-signed");
    (dir, tls)
}

fn client_tls(relay: &Relay, trust: Trust) -> ClientTls {
    ClientTls::new("127.0.0.1", relay.addr.port(), trust).expect("client TLS")
}

fn only(pattern: &str) -> RunOptions {
    let mut o = RunOptions::default();
    o.filter.include.push(pattern.to_owned());
    o
}

fn verdicts(r: &ferry_conformance::Report) -> Vec<(String, Verdict)> {
    r.cases.iter().map(|c| (c.id.clone(), c.verdict)).collect()
}

#[test]
fn every_server_case_passes_over_tls() {
    let (_dir, tls) = self_signed();
    let main = TestServer::with_config(|c| c.max_connections = 16);
    let ro = TestServer::with_config(|c| c.read_only = true);
    ro.write_file("present.txt", b"hello");
    let size10 = TestServer::with_config(|c| c.max_size = 10);
    let eager4 = TestServer::with_config(|c| c.max_eager = 4);
    let eager0 = TestServer::with_config(|c| c.max_eager = 0);
    let timeouts = TestServer::with_config(|c| {
        c.idle_timeout = Duration::from_secs(2);
        c.stall_timeout = Duration::from_secs(1);
    });
    let relay = |s: &TestServer| Relay::start(&tls, s.addr, Faults::default());
    let (r_main, r_ro) = (relay(&main), relay(&ro));
    let extras = [
        relay(&size10),
        relay(&eager4),
        relay(&eager0),
        relay(&timeouts),
    ];
    let target = ServerTarget {
        addr: r_main.addr.to_string(),
        read_only: Some(r_ro.addr.to_string()),
        extra: extras.iter().map(|r| r.addr.to_string()).collect(),
        max_wait: Duration::from_secs(3),
        session_limit: Some(16),
        hooks: common::hooks_for(&main, Duration::from_secs(2)),
        tls: Some(client_tls(&r_main, Trust::Fingerprint(tls.fingerprint()))),
        auth: None,
    };
    let mut opts = RunOptions::default();
    // TIME-2/3 sizes its file by what the sockets between runner and server can buffer and
    // paces its reading against the server's 1 s stall clock; the relay adds two sockets and
    // a second reader, and the case fails now and then through it (the server times the
    // slow reader out). It runs over TLS against the servers' own TLS once they have it.
    opts.filter.exclude.push("server/TIME-2/3".into());
    // The auth cases need a server with users: tests/auth.rs and reference_async.rs run them.
    opts.filter.exclude.push("server/AUTH-*".into());
    // The tree cases: tests/tree.rs and reference_async.rs (over the servers' own TLS).
    opts.filter.exclude.push("server/TREE-*".into());
    check_server(&target, &opts).expect("the server accepts uploads over TLS");
    let r = run_server(&target, &opts, &mut |_| {});
    common::check(&r, "ferry-sync server behind a TLS relay", KNOWN);
    assert_eq!(r.summary.unimplemented, 0);
    assert!(r.target.starts_with("ferrys://"), "{}", r.target);
    let tls_cases = r.cases.iter().filter(|c| c.id.starts_with("server/TLS-"));
    assert!(tls_cases.count() >= 10);
}

#[test]
fn tls_cases_are_unimplemented_against_a_plain_server() {
    let main = TestServer::start();
    let target = ServerTarget::new(main.addr.to_string());
    let r = run_server(&target, &only("TLS-*"), &mut |_| {});
    assert!(r.summary.total >= 10, "{}", r.summary.total);
    assert_eq!(
        r.summary.unimplemented,
        r.summary.total,
        "{:?}",
        verdicts(&r)
    );
}

#[test]
fn a_relay_without_close_notify_fails_the_tls_6_cases() {
    let (_dir, tls) = self_signed();
    let main = TestServer::start();
    let faults = Faults {
        no_close_notify: true,
        ..Faults::default()
    };
    let relay = Relay::start(&tls, main.addr, faults);
    let mut target = ServerTarget::new(relay.addr.to_string());
    target.tls = Some(client_tls(&relay, Trust::Fingerprint(tls.fingerprint())));
    let r = run_server(&target, &only("TLS-6"), &mut |_| {});
    assert_eq!(r.summary.total, 3);
    assert_eq!(r.summary.fail, 3, "{:?}", verdicts(&r));
    for c in &r.cases {
        assert_eq!(c.violated.as_deref(), Some("TLS-6"), "{}", c.id);
    }
}

#[test]
fn a_relay_that_serves_plaintext_fails_tls_5() {
    let (_dir, tls) = self_signed();
    let main = TestServer::start();
    let faults = Faults {
        plain_fallback: true,
        ..Faults::default()
    };
    let relay = Relay::start(&tls, main.addr, faults);
    let mut target = ServerTarget::new(relay.addr.to_string());
    target.tls = Some(client_tls(&relay, Trust::Fingerprint(tls.fingerprint())));
    let r = run_server(&target, &only("TLS-5"), &mut |_| {});
    let v = verdicts(&r);
    assert_eq!(
        v,
        [
            ("server/TLS-5/1".to_owned(), Verdict::Fail),
            ("server/TLS-5/2".to_owned(), Verdict::Fail)
        ],
        "{:#?}",
        r.cases
    );
    // The rest still passes over TLS.
    let r = run_server(&target, &only("TLS-4"), &mut |_| {});
    assert_eq!(r.summary.pass, 1, "{:?}", verdicts(&r));
}

#[test]
fn a_plain_server_or_another_key_stops_the_run_with_a_clear_error() {
    let (_dir, tls) = self_signed();
    let main = TestServer::start();
    let relay = Relay::start(&tls, main.addr, Faults::default());
    let other = Fingerprint::of_spki(b"another key");
    let mut target = ServerTarget::new(relay.addr.to_string());
    target.tls = Some(client_tls(&relay, Trust::Fingerprint(other)));
    let e = check_server(&target, &RunOptions::default()).expect_err("another key");
    assert!(e.contains(&other.to_string()), "{e}");
    assert!(e.contains("ferrys://"), "{e}");
    // A plain server on the address of a TLS target.
    let mut target = ServerTarget::new(main.addr.to_string());
    target.tls = Some(ClientTls::new("127.0.0.1", main.addr.port(), Trust::Insecure).expect("tls"));
    let e = check_server(&target, &RunOptions::default()).expect_err("plain server");
    assert!(e.contains("no TLS session"), "{e}");
}

#[test]
fn the_command_line_takes_a_ferrys_address_and_how_to_verify_it() {
    let (_dir, tls) = self_signed();
    let main = TestServer::start();
    let relay = Relay::start(&tls, main.addr, Faults::default());
    let addr = format!("ferrys://{}", relay.addr);
    let run = |extra: &[&str]| {
        let mut args = vec!["ferry-conform", "server", addr.as_str(), "-q"];
        args.extend_from_slice(extra);
        ferry_conformance::cli::main_from(args)
    };
    let fp = tls.fingerprint().to_string();
    assert_eq!(run(&["--fingerprint", &fp, "--include", "TLS-*"]), 0);
    assert_eq!(run(&["--insecure", "--include", "TLS-6"]), 0);
    // Another key: a clear error before any case, exit 2.
    let other = Fingerprint::of_spki(b"x").to_string();
    assert_eq!(run(&["--fingerprint", &other, "--include", "TLS-6"]), 2);
    // A CA file that does not hold the relay's certificate.
    let (_other_dir, other_tls) = self_signed();
    let ca = other_tls.files().0.to_string_lossy().into_owned();
    assert_eq!(run(&["--ca", &ca, "--include", "TLS-6"]), 2);
}
