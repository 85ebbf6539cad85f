#![no_main]
//! The payload receiver on arbitrary octets fed in arbitrary pieces: never panics, gives the
//! same data and verdict however the octets are split, never delivers more than announced,
//! and reports Complete only for data whose digest matches.
use ferry_wire::{Digest, PayloadReceiver, Step};

fn run(expected: u64, data: &[u8], cuts: &[usize]) -> (Vec<u8>, String) {
    let mut r = PayloadReceiver::new(expected);
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut cuts = cuts.iter().copied().chain(std::iter::repeat(usize::MAX));
    loop {
        match r.feed(&buf) {
            Ok((Step::Data(d), n)) => {
                out.extend_from_slice(d);
                buf.drain(..n);
            }
            Ok((Step::NeedMore, n)) => {
                buf.drain(..n);
                if fed == data.len() {
                    return (out, "truncated".into());
                }
                let k = cuts.next().unwrap_or(usize::MAX).clamp(1, data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + k]);
                fed += k;
            }
            Ok((Step::Complete(d), _)) => {
                assert_eq!(d, Digest::of(&out));
                assert_eq!(out.len() as u64, expected);
                return (out, format!("complete {d}"));
            }
            Ok((step, _)) => return (out, format!("{step:?}")),
            Err(e) => return (out, format!("error {e}")),
        }
        assert!(out.len() as u64 <= expected);
    }
}

libfuzzer_sys::fuzz_target!(|input: (u16, Vec<u8>, Vec<usize>)| {
    let (expected, data, cuts) = input;
    let whole = run(u64::from(expected), &data, &[usize::MAX]);
    let split = run(u64::from(expected), &data, &cuts);
    assert_eq!(whole, split);
});
