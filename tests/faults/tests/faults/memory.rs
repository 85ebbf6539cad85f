//! #14 item 2: a server whose shared budget for large buffers is spent still serves every
//! request the same way on the wire, with small buffers: an eager put is streamed to its
//! staging file instead of being held, a get is sent in 64 KiB chunks instead of 1 MiB ones.
//! (The listing budget's 431 is exact on the core's virtual clock: `crates/proto/tests`.)

use ferry_fault_tests::{Impl, TestServer, random_bytes};
use ferry_wire::Digest;

/// The chunk lengths of a get payload read from `s` after its `ok get` line, and the trailer.
fn chunks(s: &mut ferry_fault_tests::RawSession) -> (Vec<usize>, Vec<u8>, String) {
    let mut lens = Vec::new();
    let mut data = Vec::new();
    loop {
        let line = s.read_line_str();
        if let Some(n) = line.strip_prefix("data ") {
            let n: usize = n.trim_end().parse().expect("a chunk length");
            lens.push(n);
            data.extend(s.read_exact(n));
        } else {
            return (lens, data, line);
        }
    }
}

fn budget_spent(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.buffer_memory = 0);
    let big = random_bytes(21, 3 << 20);
    server.write_file("big.bin", &big);
    let mut s = server.session();
    // A get: the same octets, in 64 KiB chunks.
    s.send(b"get 0 big.bin\n");
    let head = s.read_line_str();
    assert!(head.starts_with("ok get 3145728 "), "{imp}: {head:?}");
    let (lens, data, end) = chunks(&mut s);
    assert!(data == big, "{imp}: the payload differs");
    assert_eq!(end, format!("end {}", Digest::of(&big)), "{imp}");
    assert_eq!(lens, vec![64 << 10; 48], "{imp}: 64 KiB chunks");
    // An eager put: streamed, stored, answered as when held.
    let small = random_bytes(22, 5000);
    let mut put = b"put 5000 new now eager.bin\ndata 5000\n".to_vec();
    put.extend_from_slice(&small);
    put.extend_from_slice(format!("end {}\n", Digest::of(&small)).as_bytes());
    s.send(&put);
    assert_eq!(
        s.read_line_str(),
        format!("ok put 5000 {}", Digest::of(&small)),
        "{imp}"
    );
    assert_eq!(
        server.read_file("eager.bin").as_deref(),
        Some(&small[..]),
        "{imp}"
    );
    // Refused by its checks after its payload (PUT-9), the session goes on.
    s.send(&put);
    assert_eq!(s.read_line_str(), "err 512 exists", "{imp}");
    assert!(server.wait_staging_empty(), "{imp}: staging debris");
    // With the default budget, the same get leaves in 1 MiB chunks.
    let server = TestServer::start_impl(imp);
    server.write_file("big.bin", &big);
    let mut s = server.session();
    s.send(b"get 0 big.bin\n");
    let _ = s.read_line_str();
    let (lens, data, _) = chunks(&mut s);
    assert!(data == big, "{imp}");
    assert_eq!(lens, vec![1 << 20; 3], "{imp}: 1 MiB chunks");
}

per_impl!(budget_spent: budget_spent_threads = Impl::Threads, budget_spent_async_std = Impl::AsyncStd, budget_spent_tokio = Impl::Tokio, budget_spent_smol = Impl::Smol);
