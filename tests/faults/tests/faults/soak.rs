//! Soak mode: with `FERRY_SOAK_SECS=N`, loops random proxy faults (mode × direction ×
//! get/put × client) over all four implementations for N seconds and prints the counts.
//! Without the variable the test returns at once. Every case is checked by `run_case`;
//! a broken promise is counted as a lost or corrupted file and fails the test at the end.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use ferry_fault_tests::{
    ClientKind, Dir, Impl, Mode, Op, Rng, assert_service, greeting_len, random_bytes, run_case,
};

use crate::proxy::fault_server;

#[test]
fn soak() {
    let Some(secs) = std::env::var("FERRY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let seed = std::env::var("FERRY_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Rng::new(seed);
    let servers: Vec<_> = Impl::ALL.iter().map(|&i| fault_server(i)).collect();
    let glens: Vec<_> = servers.iter().map(|s| greeting_len(s.addr)).collect();
    for s in &servers {
        s.write_file("probe.txt", b"probe");
    }
    let local = tempfile::tempdir().expect("tempdir");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut sessions, mut bytes, mut injected, mut violations, mut errors) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut per_impl = [0u64; 4];
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let k = rng.below(4) as usize;
        let server = &servers[k];
        let mode = Mode::ALL[rng.below(Mode::ALL.len() as u64) as usize];
        let dir = [Dir::Up, Dir::Down][rng.below(2) as usize];
        let op = [Op::Get, Op::Put][rng.below(2) as usize];
        let kind = ClientKind::ALL[rng.below(2) as usize];
        let size = 1 + rng.below(3 << 20) as usize;
        let data = random_bytes(n ^ seed, size);
        let name = format!("soak-{n}.bin");
        if op == Op::Get {
            server.write_file(&name, &data);
        }
        let sub = local.path().join(format!("c{n}"));
        std::fs::create_dir(&sub).expect("mkdir");
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_case(server, mode, dir, op, kind, &name, &data, &sub, glens[k])
        }));
        sessions += 1;
        per_impl[k] += 1;
        match r {
            Ok(o) => {
                bytes += o.forwarded;
                injected += u64::from(o.injected);
                errors += u64::from(o.result != "ok");
            }
            Err(_) => violations += 1,
        }
        let _ = std::fs::remove_dir_all(&sub);
        let _ = std::fs::remove_file(server.root.join(&name));
        if n.is_multiple_of(25) {
            assert_service(server, "probe.txt", b"probe", &format!("svc-{n}.txt"));
            sessions += 1;
        }
    }
    for s in &servers {
        assert!(
            s.wait_staging_empty(),
            "{}: staging debris after the soak",
            s.imp
        );
    }
    println!(
        "SOAK|{secs}s|seed {seed}|sessions {sessions}|bytes moved {bytes}|faults injected {injected}|failed transfers (clear errors) {errors}|files lost or corrupted {violations}|per impl threads/async-std/tokio/smol {per_impl:?}"
    );
    assert_eq!(violations, 0, "files lost or corrupted during the soak");
}
