//! Decode and encode throughput of the ferry/1 codec (`cargo bench -p ferry-wire`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_wire::{
    Digest, Entry, FileName, PayloadReceiver, PutFlow, PutMode, Request, Step, Timestamp,
    decode_entry, decode_request, encode_payload,
};

fn requests() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..1000u64 {
        let name = FileName::new(format!("天线{i} report.doc")).expect("valid");
        Request::Get {
            offset: i,
            name: name.clone(),
        }
        .encode(&mut out);
        Request::Put {
            size: i * 4096,
            mode: PutMode::New,
            flow: PutFlow::Now,
            name,
        }
        .encode(&mut out);
        Request::Dir.encode(&mut out);
    }
    out
}

fn bench_requests(c: &mut Criterion) {
    let wire = requests();
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode 3000 lines", |b| {
        b.iter(|| {
            let mut buf = &wire[..];
            let mut n = 0;
            while let Ok((req, used)) = decode_request(buf) {
                black_box(req);
                buf = &buf[used..];
                n += 1;
            }
            assert_eq!(n, 3000);
        })
    });
    let reqs: Vec<Request> = {
        let mut buf = &wire[..];
        let mut v = Vec::new();
        while let Ok((req, used)) = decode_request(buf) {
            v.push(req);
            buf = &buf[used..];
        }
        v
    };
    g.bench_function("encode 3000 lines", |b| {
        let mut out = Vec::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            for r in &reqs {
                r.encode(&mut out);
            }
            black_box(&out);
        })
    });
    g.finish();
}

fn bench_listing(c: &mut Criterion) {
    let mut wire = Vec::new();
    for i in 0..1000 {
        Entry {
            size: i * 1000,
            mtime: Timestamp::from_unix_clamped(1_700_000_000 + i as i64),
            name: FileName::new(format!("射频仿真 {i}.pptx")).expect("valid"),
        }
        .encode(&mut wire);
    }
    let mut g = c.benchmark_group("listing");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode 1000 entries", |b| {
        b.iter(|| {
            let mut buf = &wire[..];
            while let Ok((e, used)) = decode_entry(buf) {
                black_box(e);
                buf = &buf[used..];
            }
        })
    });
    g.finish();
}

fn bench_payload(c: &mut Criterion) {
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut wire = Vec::new();
    encode_payload(&data, Digest::of(&data), &mut wire);
    let mut g = c.benchmark_group("payload");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("receive+verify 16 MiB", |b| {
        b.iter(|| {
            let mut r = PayloadReceiver::new(data.len() as u64);
            let mut buf = &wire[..];
            loop {
                match r.feed(buf) {
                    Ok((Step::Data(d), n)) => {
                        black_box(d);
                        buf = &buf[n..];
                    }
                    Ok((Step::NeedMore, n)) => buf = &buf[n..],
                    Ok((Step::Complete(_), _)) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
    });
    g.bench_function("digest 16 MiB", |b| b.iter(|| black_box(Digest::of(&data))));
    g.finish();
}

criterion_group!(benches, bench_requests, bench_listing, bench_payload);
criterion_main!(benches);
