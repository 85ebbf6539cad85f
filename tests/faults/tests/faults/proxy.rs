//! Priority 1: every proxy fault × direction × get/put × client, on every implementation.

use std::time::{Duration, Instant};

use ferry_fault_tests::{
    ClientKind, Dir, Impl, Mode, Op, TestServer, assert_service, greeting_len, random_bytes,
    run_case,
};

/// Size of the file each case moves (more than one 1 MiB chunk).
pub const CASE_SIZE: usize = 1_500_000;

/// A server with the suite's short timeouts (stall 1 s, idle 3 s).
pub fn fault_server(imp: Impl) -> TestServer {
    TestServer::with_impl_config(imp, |c| {
        c.stall_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(3);
    })
}

/// [`fault_server`] serving ferry/1 over TLS.
pub fn fault_server_tls(imp: Impl) -> TestServer {
    TestServer::start_tls(imp, |c| {
        c.stall_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(3);
    })
}

/// All eight cases of one mode (2 directions × get/put × 2 clients), in parallel.
fn matrix(imp: Impl, mode: Mode) {
    matrix_on(fault_server(imp), mode);
}

/// [`matrix`] over TLS: a flipped octet must fail the TLS record (never reach the protocol
/// as data), a cut or reset must end in a clear error and no partial file; the octets the
/// proxy counts are those of the TLS stream (its handshake first).
fn matrix_tls(imp: Impl, mode: Mode) {
    matrix_on(fault_server_tls(imp), mode);
}

fn matrix_on(server: TestServer, mode: Mode) {
    let imp = server.imp;
    let t0 = Instant::now();
    let data = random_bytes(0xfe77 + imp as u64, CASE_SIZE);
    server.write_file("source.bin", &data);
    server.write_file("probe.txt", b"probe");
    // Over TLS the first octets are the handshake's: any offset a little into the stream
    // lands in it, and a third of the payload later is inside the payload still.
    let glen = if server.tls.is_some() {
        120
    } else {
        greeting_len(server.addr)
    };
    let local = tempfile::tempdir().expect("tempdir");
    let mut cases = Vec::new();
    for dir in [Dir::Up, Dir::Down] {
        for op in [Op::Get, Op::Put] {
            for kind in ClientKind::ALL {
                cases.push((dir, op, kind));
            }
        }
    }
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(i, &(dir, op, kind))| {
                let (server, data, local) = (&server, &data, local.path());
                s.spawn(move || {
                    let sub = local.join(format!("c{i}"));
                    std::fs::create_dir(&sub).expect("mkdir");
                    let name = match op {
                        Op::Get => "source.bin".to_owned(),
                        Op::Put => format!("up-{i}.bin"),
                    };
                    let o = run_case(server, mode, dir, op, kind, &name, data, &sub, glen);
                    (dir, op, kind, o)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for (dir, op, kind, o) in &outcomes {
        println!(
            "OUTCOME|{imp}|{}|{op:?}|{dir}|{}|{}|{}",
            mode.name(),
            kind.name(),
            o.result,
            if o.injected { "fired" } else { "not-reached" }
        );
    }
    // The fault fired in the payload direction in every case.
    for (dir, op, _, o) in &outcomes {
        let payload = matches!((op, dir), (Op::Get, Dir::Down) | (Op::Put, Dir::Up));
        if payload {
            assert!(o.injected, "{imp} {mode:?}: the fault never fired");
        }
    }
    assert_service(&server, "probe.txt", b"probe", "after-fault.txt");
    assert!(
        server.wait_staging_empty(),
        "{imp} {mode:?}: staging debris left: {:?}",
        ferry_fault_tests::names_in(&server.root.join(ferry_fault_tests::STAGING))
    );
    // Only complete files are visible: the sources, successful uploads (checked equal in
    // run_case) and the service probe.
    for n in server.visible_names() {
        if n.starts_with("up-") {
            assert!(
                server.read_file(&n).as_deref() == Some(&data[..]),
                "{imp}: {n} differs"
            );
        }
    }
    println!("TIMING|{imp}|{}|{:?}", mode.name(), t0.elapsed());
}

macro_rules! proxy_tests {
    ($($name:ident: $imp:expr, $mode:expr;)*) => {$(
        #[test]
        fn $name() {
            matrix($imp, $mode);
        }
    )*};
}

const DELAY: Mode = Mode::ALL[0];
const DRIP: Mode = Mode::ALL[1];

proxy_tests! {
    threads_delay: Impl::Threads, DELAY;
    threads_drip: Impl::Threads, DRIP;
    threads_stall: Impl::Threads, Mode::Stall;
    threads_cut: Impl::Threads, Mode::Cut;
    threads_reset: Impl::Threads, Mode::Reset;
    threads_corrupt: Impl::Threads, Mode::Corrupt;
    async_std_delay: Impl::AsyncStd, DELAY;
    async_std_drip: Impl::AsyncStd, DRIP;
    async_std_stall: Impl::AsyncStd, Mode::Stall;
    async_std_cut: Impl::AsyncStd, Mode::Cut;
    async_std_reset: Impl::AsyncStd, Mode::Reset;
    async_std_corrupt: Impl::AsyncStd, Mode::Corrupt;
    tokio_delay: Impl::Tokio, DELAY;
    tokio_drip: Impl::Tokio, DRIP;
    tokio_stall: Impl::Tokio, Mode::Stall;
    tokio_cut: Impl::Tokio, Mode::Cut;
    tokio_reset: Impl::Tokio, Mode::Reset;
    tokio_corrupt: Impl::Tokio, Mode::Corrupt;
    smol_delay: Impl::Smol, DELAY;
    smol_drip: Impl::Smol, DRIP;
    smol_stall: Impl::Smol, Mode::Stall;
    smol_cut: Impl::Smol, Mode::Cut;
    smol_reset: Impl::Smol, Mode::Reset;
    smol_corrupt: Impl::Smol, Mode::Corrupt;
}

macro_rules! proxy_tls_tests {
    ($($name:ident: $imp:expr, $mode:expr;)*) => {$(
        #[test]
        fn $name() {
            matrix_tls($imp, $mode);
        }
    )*};
}

proxy_tls_tests! {
    tls_threads_stall: Impl::Threads, Mode::Stall;
    tls_threads_cut: Impl::Threads, Mode::Cut;
    tls_threads_reset: Impl::Threads, Mode::Reset;
    tls_threads_corrupt: Impl::Threads, Mode::Corrupt;
    tls_async_std_cut: Impl::AsyncStd, Mode::Cut;
    tls_async_std_corrupt: Impl::AsyncStd, Mode::Corrupt;
    tls_tokio_stall: Impl::Tokio, Mode::Stall;
    tls_tokio_cut: Impl::Tokio, Mode::Cut;
    tls_tokio_reset: Impl::Tokio, Mode::Reset;
    tls_tokio_corrupt: Impl::Tokio, Mode::Corrupt;
    tls_smol_cut: Impl::Smol, Mode::Cut;
    tls_smol_reset: Impl::Smol, Mode::Reset;
    tls_smol_corrupt: Impl::Smol, Mode::Corrupt;
    tls_smol_stall: Impl::Smol, Mode::Stall;
    tls_async_std_reset: Impl::AsyncStd, Mode::Reset;
    tls_async_std_stall: Impl::AsyncStd, Mode::Stall;
}
