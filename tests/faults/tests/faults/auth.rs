//! Logins through the fault proxy (spec section 16, issue #16): a connection cut, reset,
//! corrupted or stalled anywhere in a session that logs in (the TLS handshake, the greeting,
//! the `auth` line, SCRAM's `more` and `auth-final`, the final reply, the `close`), in either
//! direction, with a key and with a password. Each attempt ends in time with a clear error or
//! a session that logged in; a corrupted octet is never taken for a refusal (the proof is
//! inside TLS, whose records it breaks); afterwards the server serves logins as before.

use std::time::Duration;

use ferry_fault_tests::{ClientKind, Dir, Fault, Impl, Mode, Proxy, is_clear_network_error};
use ferry_sync::client::{ClientError, ClientOptions, Login};
use ferry_test_support::users::{self, BOB_PASSWORD};
use ferry_test_support::{TestClient, TestServer};

/// The points in each direction's octets where a fault is placed: this many, evenly spread.
const POINTS: u64 = 7;

fn options(server: &TestServer, login: Login) -> ClientOptions {
    server.client_options(ClientOptions {
        login: Some(login),
        ..ferry_fault_tests::client_options()
    })
}

/// Connects (logging in) through `proxy`, lists, and closes.
fn session(kind: ClientKind, proxy: &Proxy, options: &ClientOptions) -> Result<(), ClientError> {
    let mut c = TestClient::connect_with(kind.imp(), proxy.addr, options)?;
    c.dir()?;
    c.close()
}

fn logins_survive_faults(imp: Impl) {
    let (server, users) = users::start(imp, |c| {
        c.stall_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(3);
        // Every case connects from 127.0.0.1 at once.
        c.max_per_address = c.max_connections;
    });
    let logins = [
        ("key", users.alice()),
        ("password", users.bob(BOB_PASSWORD)),
    ];
    let mut cases = Vec::new();
    for (how, login) in &logins {
        // The octets of a whole session in each direction, through a proxy that passes all.
        let pass = Proxy::start(
            server.addr,
            Fault {
                mode: Mode::Pass,
                dir: Dir::Up,
                at: 0,
            },
        );
        session(ClientKind::Sync, &pass, &options(&server, login.clone()))
            .unwrap_or_else(|e| panic!("{imp} {how}: no fault, yet {e}"));
        let sizes = [
            (Dir::Up, pass.forwarded_in(Dir::Up)),
            (Dir::Down, pass.forwarded_in(Dir::Down)),
        ];
        drop(pass);
        for (dir, total) in sizes {
            for mode in [Mode::Cut, Mode::Reset, Mode::Corrupt, Mode::Stall] {
                for k in 1..=POINTS {
                    let at = total * k / (POINTS + 1);
                    cases.push((*how, login.clone(), Fault { mode, dir, at }));
                }
            }
        }
    }
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(how, login, fault)| {
                let server = &server;
                s.spawn(move || {
                    let proxy = Proxy::start(server.addr, *fault);
                    let result = session(ClientKind::Sync, &proxy, &options(server, login.clone()));
                    let what = format!(
                        "{imp} {how} {} {} at {}",
                        fault.mode.name(),
                        fault.dir,
                        fault.at
                    );
                    match result {
                        Ok(()) => None,
                        Err(e) if is_clear_network_error(&e) => None,
                        Err(e) => Some(format!("{what}: {e:?}")),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert!(failures.is_empty(), "unclear outcomes: {failures:#?}");
    // The server serves logins as before, with each kind of client.
    for kind in ClientKind::ALL {
        for (how, login) in &logins {
            let direct = Proxy::start(
                server.addr,
                Fault {
                    mode: Mode::Pass,
                    dir: Dir::Up,
                    at: 0,
                },
            );
            session(kind, &direct, &options(&server, login.clone()))
                .unwrap_or_else(|e| panic!("{imp} {how} after the faults: {e}"));
        }
    }
}

per_impl!(logins_survive_faults:
    logins_survive_faults_threads = Impl::Threads,
    logins_survive_faults_async_std = Impl::AsyncStd,
    logins_survive_faults_tokio = Impl::Tokio,
    logins_survive_faults_smol = Impl::Smol);
