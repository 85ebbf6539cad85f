#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::check_decode(
    data,
    ferry_wire::decode_request
));
