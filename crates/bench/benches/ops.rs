//! Single-operation latency per server implementation (`cargo bench -p ferry-bench --bench
//! ops`): one open session of ferry-sync's client against each server on 127.0.0.1, timing
//! one `dir`, one 4 KiB get and one 4 KiB put (replace, eager) at a time: the round trip plus
//! each server's per-request work. The servers run in this process (ferry-test-support), so
//! these figures are for comparing implementations, not for capacity: `ferry bench` measures
//! servers as separate processes under load.

use std::hint::black_box;
use std::io;

use criterion::{Criterion, criterion_group, criterion_main};
use ferry_sync::client::{Client, PutOptions};
use ferry_test_support::{Impl, TestServer};
use ferry_wire::{FileName, PutMode};

const SMALL: usize = 4096;

fn name(s: &str) -> FileName {
    FileName::new(s).expect("a valid name")
}

fn single_ops(c: &mut Criterion) {
    let payload = vec![0xA5u8; SMALL];
    for imp in Impl::ALL {
        let server = TestServer::start_impl(imp);
        for i in 0..16 {
            server.write_file(&format!("f{i:02}"), &payload);
        }
        let mut client = Client::connect(server.addr).expect("connect");
        let mut group = c.benchmark_group(format!("op/{}", imp.name()));
        let small = name("f00");
        group.bench_function("get 4 KiB", |b| {
            b.iter(|| {
                let r = client
                    .get_to_writer(&small, &mut io::sink(), &mut |_| {})
                    .expect("get");
                black_box(r.size)
            })
        });
        let up = name("up");
        let replace = PutOptions {
            mode: PutMode::Replace,
            ..PutOptions::default()
        };
        group.bench_function("put 4 KiB", |b| {
            b.iter(|| {
                let r = client
                    .put_from_reader(&up, SMALL as u64, &mut &payload[..], &replace, &mut |_| {})
                    .expect("put");
                black_box(r.size)
            })
        });
        group.bench_function("dir of 17", |b| {
            b.iter(|| black_box(client.dir().expect("dir").len()))
        });
        group.finish();
        client.close().expect("close");
        server.stop().expect("the server stops");
    }
}

criterion_group!(benches, single_ops);
criterion_main!(benches);
