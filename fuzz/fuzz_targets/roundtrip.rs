#![no_main]
use ferry_fuzz::check_roundtrip;
use ferry_wire::*;

#[derive(Debug, arbitrary::Arbitrary)]
enum Message {
    Request(Request),
    Reply(Reply),
    Entry(Entry),
    Frame(Frame),
    Hello(Hello),
    TreeRequest(tree::TreeRequest),
    TreeReply(tree::TreeReply),
    ListEntry(tree::ListEntry),
}

libfuzzer_sys::fuzz_target!(|m: Message| match m {
    Message::Request(m) => check_roundtrip(&m, decode_request),
    Message::Reply(m) => check_roundtrip(&m, decode_reply),
    Message::Entry(m) => check_roundtrip(&m, decode_entry),
    Message::Frame(m) => check_roundtrip(&m, decode_frame),
    Message::Hello(m) => check_roundtrip(&m, decode_hello),
    Message::TreeRequest(m) => check_roundtrip(&m, tree::decode_tree_request),
    Message::TreeReply(m) => check_roundtrip(&m, tree::decode_tree_reply),
    Message::ListEntry(m) => check_roundtrip(&m, tree::decode_list_entry),
});
