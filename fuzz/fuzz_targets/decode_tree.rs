#![no_main]
//! The `tree` extension's lines (spec section 17): requests (with `get`/`put` by path),
//! replies and listing lines decode without panic, what decodes re-encodes canonically and
//! decodes back to itself, and a listing line is skipped only for its path.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferry_fuzz::check_tree_request(data);
    ferry_fuzz::check_decode(data, ferry_wire::tree::decode_tree_reply);
    ferry_fuzz::check_decode(data, ferry_wire::tree::decode_list_entry);
    ferry_fuzz::check_list_line(data);
    // The router agrees with the decoder: a line it does not route to the extension is
    // never one of the extension's own requests.
    if let Ok((r, _)) = ferry_wire::tree::decode_tree_request(data) {
        let own = !matches!(
            r,
            ferry_wire::tree::TreeRequest::Get { .. } | ferry_wire::tree::TreeRequest::Put { .. }
        );
        assert_eq!(ferry_wire::tree::is_tree_verb(data), own, "{r:?}");
    }
});
