#![no_main]
//! The same octets fed in arbitrary pieces give the same messages as fed whole.
use ferry_fuzz::decode_stream;

libfuzzer_sys::fuzz_target!(|input: (Vec<u8>, Vec<usize>)| {
    let (data, cuts) = input;
    let whole = decode_stream(&data, &[usize::MAX], ferry_wire::decode_request);
    let split = decode_stream(&data, &cuts, ferry_wire::decode_request);
    assert_eq!(whole, split);
    let whole = decode_stream(&data, &[usize::MAX], ferry_wire::decode_reply);
    let split = decode_stream(&data, &cuts, ferry_wire::decode_reply);
    assert_eq!(whole, split);
});
