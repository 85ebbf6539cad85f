#![no_main]
//! The `auth` extension's lines (spec section 16): requests and replies decode without panic,
//! and what decodes re-encodes canonically and decodes back to itself.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferry_fuzz::check_decode(data, ferry_fuzz::decode_auth_request);
    ferry_fuzz::check_decode(data, ferry_wire::auth::decode_auth_reply);
});
