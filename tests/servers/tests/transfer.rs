//! Bulk and concurrency: a large file streamed up and down (generated on the fly, never held
//! in memory), and 32 concurrent raw-socket clients mixing get, put and dir with byte-exact
//! results.

use std::io::Write as _;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ferry_test_support::{Impl, PayloadEnd, RawSession, TestServer, file_name, put_now_bytes};
use ferry_wire::{Digest, Hasher, PutFlow, PutMode, Reply, Request};

/// Size of the large-file test: 300 MiB. In a debug build the cost is the digest (XXH3 is
/// unoptimised there): the client hashes once, the server twice.
const BIG: u64 = 300 << 20;
const BLOCK: usize = 1 << 20;

/// The large file's content: block `i` is a fixed pseudo-random block rotated by an amount
/// that depends on `i`, so blocks differ and misplaced octets are caught; made with two
/// copies per block (cheap even unoptimised).
struct Content {
    base: Vec<u8>,
}

impl Content {
    fn new() -> Self {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let base = (0..BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        Self { base }
    }

    fn block(&self, i: u64, out: &mut [u8]) {
        let r = (i as usize).wrapping_mul(7_919 * 4_099) % BLOCK;
        out[..BLOCK - r].copy_from_slice(&self.base[r..]);
        out[BLOCK - r..].copy_from_slice(&self.base[..r]);
    }
}

fn a_large_file_streams_up_and_down_byte_exact(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let content = Content::new();
    let started = Instant::now();

    // Upload, flow wait, generated block by block.
    let mut s = server.session();
    s.set_timeout(Duration::from_secs(60));
    s.send_request(&Request::Put {
        size: BIG,
        mode: PutMode::New,
        flow: PutFlow::Wait,
        name: file_name("big.bin"),
    });
    s.expect_line("go");
    let mut hasher = Hasher::new();
    let mut frame = vec![0u8; 16 + BLOCK];
    let head = format!("data {BLOCK}\n");
    frame[..head.len()].copy_from_slice(head.as_bytes());
    let blocks = BIG / BLOCK as u64;
    for i in 0..blocks {
        content.block(i, &mut frame[head.len()..head.len() + BLOCK]);
        hasher.update(&frame[head.len()..head.len() + BLOCK]);
        s.send(&frame[..head.len() + BLOCK]);
    }
    let digest = hasher.digest();
    s.send(format!("end {digest}\n").as_bytes());
    assert_eq!(s.read_reply(), Reply::PutOk { size: BIG, digest });
    let uploaded = started.elapsed();
    let meta = std::fs::metadata(server.root.join("big.bin")).expect("stored");
    assert_eq!(meta.len(), BIG);

    // Download: compare every octet with the generator, and the server's digest with ours.
    s.send(b"get 0 big.bin\n");
    let Reply::GetOk { size, .. } = s.read_reply() else {
        panic!("ok get")
    };
    assert_eq!(size, BIG);
    let mut expected = vec![0u8; BLOCK];
    let mut pos = 0u64;
    let mut current = u64::MAX;
    let trailer = s.read_payload_unhashed(BIG, |mut data| {
        while !data.is_empty() {
            let (i, off) = (pos / BLOCK as u64, (pos % BLOCK as u64) as usize);
            if i != current {
                content.block(i, &mut expected);
                current = i;
            }
            let n = data.len().min(BLOCK - off);
            assert!(
                data[..n] == expected[off..off + n],
                "octets differ near offset {pos}"
            );
            pos += n as u64;
            data = &data[n..];
        }
    });
    assert_eq!(pos, BIG);
    assert_eq!(trailer, format!("end {digest}"));
    eprintln!(
        "{} MiB: upload {:?}, download {:?} ({} build)",
        BIG >> 20,
        uploaded,
        started.elapsed() - uploaded,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    s.send(b"close\n");
    s.expect_line("bye");
    assert!(server.staging_is_empty());
}

/// 32 clients at once, each with its own files and a few shared ones, pipelining part of
/// their requests. Every byte that comes back is checked.
fn thirty_two_concurrent_clients_get_byte_exact_results(imp: Impl) {
    const CLIENTS: usize = 32;
    let server = TestServer::start_impl(imp);
    let shared: Vec<(String, Vec<u8>)> = (0..4)
        .map(|k| {
            let len = [0usize, 1, 70_000, (1 << 20) + 17][k];
            let data: Vec<u8> = (0..len).map(|i| (i * (k + 3) % 251) as u8).collect();
            (format!("shared-{k} 天线.bin"), data)
        })
        .collect();
    for (name, data) in &shared {
        server.write_file(name, data);
    }
    let shared = Arc::new(shared);
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let addr = server.addr;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let shared = Arc::clone(&shared);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mine = |k: usize| -> Vec<u8> {
                    let len = (c * 7_919 + k * 104_729) % 300_000;
                    (0..len).map(|i| ((i ^ c ^ (k << 3)) % 256) as u8).collect()
                };
                let mut s = RawSession::connect(addr);
                s.set_timeout(Duration::from_secs(30));
                s.expect_greeting();
                barrier.wait();

                // An eager put and a wait put of its own.
                let a = mine(0);
                let name_a = format!("client-{c:02} a.bin");
                assert_eq!(
                    s.put_now(&name_a, PutMode::New, &a),
                    Reply::PutOk {
                        size: a.len() as u64,
                        digest: Digest::of(&a)
                    }
                );
                let b = mine(1);
                let name_b = format!("client-{c:02} 射频.bin");
                assert_eq!(
                    s.put_wait(&name_b, PutMode::New, &b),
                    Reply::PutOk {
                        size: b.len() as u64,
                        digest: Digest::of(&b)
                    }
                );

                // A pipelined batch: gets of shared files and its own, a dir, a replace.
                let a2 = mine(2);
                let mut batch = Vec::new();
                for (name, _) in shared.iter() {
                    batch.extend_from_slice(format!("get 0 {name}\n").as_bytes());
                }
                batch.extend_from_slice(format!("get 0 {name_a}\n").as_bytes());
                batch.extend_from_slice(b"dir\n");
                batch.extend_from_slice(&put_now_bytes(&name_a, PutMode::Replace, &a2));
                batch.extend_from_slice(format!("get 0 {name_a}\n").as_bytes());
                batch.extend_from_slice(format!("get 1 {name_b}\n").as_bytes());
                s.send(&batch);

                for (name, data) in shared.iter() {
                    let Reply::GetOk { size, .. } = s.read_reply() else {
                        panic!("get {name}")
                    };
                    assert_eq!(size, data.len() as u64);
                    let (got, end) = s.read_payload(size);
                    assert!(got == *data, "client {c}: {name}");
                    assert_eq!(end, PayloadEnd::Complete(Digest::of(data)));
                }
                let Reply::GetOk { size, .. } = s.read_reply() else {
                    panic!("get a")
                };
                let (got, end) = s.read_payload(size);
                assert!(got == a, "client {c}: own file a");
                assert_eq!(end, PayloadEnd::Complete(Digest::of(&a)));

                let Reply::DirOk { count } = s.read_reply() else {
                    panic!("dir")
                };
                let listing: Vec<String> = (0..count).map(|_| s.read_line_str()).collect();
                assert!(listing.windows(2).all(|w| {
                    let name = |l: &str| l.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
                    name(&w[0]).as_bytes() < name(&w[1]).as_bytes()
                }));
                for (name, data) in shared.iter() {
                    assert!(
                        listing
                            .iter()
                            .any(|l| l.starts_with(&format!("{} ", data.len()))
                                && l.ends_with(&format!(" {name}")))
                    );
                }
                assert!(listing.iter().any(|l| l.ends_with(&format!(" {name_a}"))));

                assert!(matches!(s.read_reply(), Reply::PutOk { .. }), "replace a");
                let Reply::GetOk { size, .. } = s.read_reply() else {
                    panic!("get a2")
                };
                let (got, end) = s.read_payload(size);
                assert!(got == a2, "client {c}: replaced file a");
                assert_eq!(end, PayloadEnd::Complete(Digest::of(&a2)));

                let Reply::GetOk { size, .. } = s.read_reply() else {
                    panic!("get b")
                };
                let mut prefix = Hasher::new();
                prefix.update(&b[..1.min(b.len())]);
                let mut got = Vec::new();
                let end = s.read_payload_with(size - 1, prefix, |d| got.extend_from_slice(d));
                assert!(got == b[1..], "client {c}: resumed file b");
                assert_eq!(end, PayloadEnd::Complete(Digest::of(&b)));

                // Everybody races for one name with `new`: exactly one wins (checked below).
                let reply = s.put_now("contended", PutMode::New, format!("{c}").as_bytes());
                let won = match reply {
                    Reply::PutOk { .. } => true,
                    Reply::Err(e) if e.code.get() == 512 => false,
                    other => panic!("client {c}: contended put: {other:?}"),
                };
                s.send(b"close\n");
                s.expect_line("bye");
                s.expect_closed();
                (c, a2, b, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in threads {
        let (c, a2, b, won) = t.join().expect("a client failed");
        assert_eq!(server.read_file(&format!("client-{c:02} a.bin")), Some(a2));
        assert_eq!(
            server.read_file(&format!("client-{c:02} 射频.bin")),
            Some(b)
        );
        if won {
            winners.push(c);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one `new` wins: {winners:?}");
    assert_eq!(
        server.read_file("contended"),
        Some(winners[0].to_string().into_bytes())
    );
    assert_eq!(server.visible_names().len(), 4 + 2 * CLIENTS + 1);
    assert!(server.staging_is_empty());
    let _ = std::io::stderr().flush();
}

ferry_test_support::every_impl!(
    a_large_file_streams_up_and_down_byte_exact,
    thirty_two_concurrent_clients_get_byte_exact_results,
);
