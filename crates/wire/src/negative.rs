//! Negative cases: each validation rule rejects what it must, with the right kind, rule and
//! offset.

use crate::code::Code;
use crate::decode::{
    DecodeError, Invalid, InvalidKind, decode_entry, decode_frame, decode_hello, decode_reply,
    decode_request,
};
use crate::limits::MAX_LINE;
use crate::message::{PutFlow, PutMode};
use crate::name::NameError;
use crate::parse::PutHead;

fn invalid(r: Result<impl std::fmt::Debug, DecodeError>) -> Invalid {
    match r {
        Err(DecodeError::Invalid(i)) => i,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn request_syntax_errors_say_where_and_which_rule() {
    let cases: &[(&[u8], usize, &str)] = &[
        (b"DIR\n", 0, "request"),
        (b"dir \n", 3, "request"),
        (b"list\n", 0, "request"),
        (b"\n", 0, "request"),
        (b"get x\n", 4, "offset"),
        (b"get 01 a\n", 4, "offset"),
        (b"get 18446744073709551616 a\n", 4, "offset"),
        (b"get -1 a\n", 4, "offset"),
        (b"get 1  a\n", 6, "name"),
        (b"version 0\n", 8, "version"),
        (b"version 100000\n", 8, "version"),
        (b"close now\n", 5, "request"),
    ];
    for &(line, offset, rule) in cases {
        let e = invalid(decode_request(line));
        let name_error = matches!(e.kind, InvalidKind::BadName { .. });
        assert!(
            e.kind == InvalidKind::Syntax || name_error,
            "{line:?}: {e:?}"
        );
        assert_eq!(
            (e.offset, e.rule),
            (offset, rule),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(e.line_len, Some(line.len()));
    }
}

#[test]
fn malformed_put_lines_are_fatal_but_bad_names_are_not() {
    for line in [
        &b"put\n"[..],
        b"put x new now a\n",
        b"put 1 old now a\n",
        b"put 1 new later a\n",
        b"put 1 new now\n",
    ] {
        let e = invalid(decode_request(line));
        assert_eq!(e.kind, InvalidKind::MalformedPut, "{line:?}");
        assert_eq!(e.reply_code(), Code::PROTOCOL);
        assert!(e.reply_code().closes_connection());
    }
    let e = invalid(decode_request(b"put 5 new now ../etc/passwd\n"));
    assert_eq!(
        e.kind,
        InvalidKind::BadName {
            error: NameError::ForbiddenChar('/'),
            put: Some(PutHead {
                size: 5,
                mode: PutMode::New,
                flow: PutFlow::Now
            })
        }
    );
    assert_eq!(e.reply_code(), Code::BAD_NAME);
    assert!(!e.reply_code().closes_connection());
}

#[test]
fn every_name_rule_is_enforced_on_the_wire() {
    let cases: &[(&[u8], NameError)] = &[
        (b"get 0 a/b\n", NameError::ForbiddenChar('/')),
        (b"get 0 /etc/passwd\n", NameError::ForbiddenChar('/')),
        (b"get 0 a\\b\n", NameError::ForbiddenChar('\\')),
        (b"get 0 ..\n", NameError::LeadingDot),
        (b"get 0 .\n", NameError::LeadingDot),
        (b"get 0 a\x00b\n", NameError::ForbiddenChar('\0')),
        (b"get 0 a\rb\n", NameError::ForbiddenChar('\r')),
        (b"get 0 \xc2\x85\n", NameError::ForbiddenChar('\u{85}')),
        (b"get 0 a \n", NameError::EdgeSpace),
        (b"get 0 \xff\n", NameError::NotUtf8),
        (b"get 0 e\xcc\x81\n", NameError::NotNfc),
    ];
    for &(line, want) in cases {
        let e = invalid(decode_request(line));
        assert_eq!(
            e.kind,
            InvalidKind::BadName {
                error: want,
                put: None
            },
            "{line:?}"
        );
        assert_eq!(e.offset, 6);
    }
    let long = format!("get 0 {}\n", "a".repeat(256));
    assert_eq!(
        invalid(decode_request(long.as_bytes())).kind,
        InvalidKind::BadName {
            error: NameError::TooLong(256),
            put: None
        }
    );
}

#[test]
fn line_length_limit_is_exact() {
    // A line of exactly MAX_LINE octets, eol included, is judged on its content.
    let mut at_limit = vec![b'x'; MAX_LINE - 1];
    at_limit.push(b'\n');
    assert_eq!(invalid(decode_request(&at_limit)).kind, InvalidKind::Syntax);
    let mut over = vec![b'x'; MAX_LINE];
    over.push(b'\n');
    let e = invalid(decode_request(&over));
    assert_eq!((e.kind, e.line_len), (InvalidKind::LineTooLong, None));
    assert_eq!(e.reply_code(), Code::LINE_TOO_LONG);
    // Without any LF: incomplete below the limit, too long at it.
    assert_eq!(
        decode_request(&vec![b'x'; MAX_LINE - 1]),
        Err(DecodeError::Incomplete)
    );
    assert_eq!(
        invalid(decode_request(&vec![b'x'; MAX_LINE])).kind,
        InvalidKind::LineTooLong
    );
}

#[test]
fn reply_and_payload_rules() {
    let cases: &[(&[u8], &str)] = &[
        (b"ok\n", "reply"),
        (b"OK dir 1\n", "reply"),
        (b"ok dir\n", "reply"),
        (b"ok dir x\n", "count"),
        (b"ok get 5 2026-02-30T00:00:00Z\n", "mtime"),
        (b"ok get 5 2026-01-01T24:00:00Z\n", "mtime"),
        (b"ok get 5 2026-01-01t00:00:00z\n", "mtime"),
        (b"ok get 5 2026-01-01T00:00:60Z\n", "mtime"),
        (
            b"ok put 5 xxh3-128:ABCDEF00000000000000000000000000\n",
            "digest",
        ),
        (b"ok put 5 xxh3-128:abc\n", "digest"),
        (b"ok put 5 md5:d41d8cd98f00b204e9800998ecf8427e\n", "digest"),
        (b"err 5\n", "code"),
        (b"err 4040 x\n", "code"),
        (b"err 404 \n", "text"),
        (b"err 404 a\x01b\n", "text"),
        (b"err 404 \xff\n", "text"),
    ];
    for &(line, rule) in cases {
        let e = invalid(decode_reply(line));
        assert_eq!(e.rule, rule, "{:?}: {e:?}", String::from_utf8_lossy(line));
    }
    for line in [
        &b"data 0\n"[..],
        b"data 1048577\n",
        b"data 01\n",
        b"end\n",
        b"abort\n",
        b"Data 1\n",
    ] {
        invalid(decode_frame(line));
    }
    assert!(decode_frame(b"data 1048576\n").is_ok());
    for line in [
        &b"5 2026-01-01T00:00:00Z\n"[..],
        b"5 2026-01-01T00:00:00Z ../x\n",
        b"x 2026-01-01T00:00:00Z a\n",
    ] {
        invalid(decode_entry(line));
    }
}

#[test]
fn greeting_rules() {
    const FULL: &str =
        "max-line=4096 max-name=255 max-size=1 max-chunk=1048576 max-eager=0 idle=1 stall=1";
    assert!(decode_hello(format!("ferry/1 {FULL}\n").as_bytes()).is_ok());
    assert!(decode_hello(format!("ferry/1,2 {FULL} ext= x-y=z\n").as_bytes()).is_ok());
    assert!(decode_hello(format!("ferry/2 {FULL} ext=starttls,auth\n").as_bytes()).is_ok());
    assert!(decode_hello(format!("ferry/1 min-rate=0 {FULL}\n").as_bytes()).is_ok());
    for bad in [
        "ferry/1\n".to_owned(),                  // limits missing
        format!("ferry/ {FULL}\n"),              // no version
        format!("ferry/0 {FULL}\n"),             // version 0
        format!("FERRY/1 {FULL}\n"),             // case
        format!("ferry/1 {FULL} idle=2\n"),      // duplicate
        format!("ferry/1 {FULL} ext=a ext=b\n"), // duplicate ext
        format!("ferry/1 {FULL} ext=A\n"),       // bad ext name
        format!("ferry/1 {FULL} x\n"),           // param without =
        format!("ferry/1 {FULL} Xy=1\n"),        // bad param name
        format!("ferry/1 {}\n", FULL.replace("max-size=1", "max-size=01")),
        format!("ferry/1 {FULL} x-y=1 x-y=2\n"), // HELLO-3, any name
        format!("ferry/1 {FULL} ext=a,a\n"),     // EXT-1
        format!("ferry/1 {FULL} min-rate=1 min-rate=2\n"), // HELLO-3
        format!("ferry/1 {FULL} min-rate=1k\n"), // rate-param: u64
        format!("ferry/1 {FULL} min-rate=\n"),
    ] {
        invalid(decode_hello(bad.as_bytes()));
    }
}

/// Regression (fuzz target decode_hello, crash-68ab963b): params in a non-default order
/// re-encoded in the default order, so a decoded greeting did not encode back to its octets.
#[test]
fn greeting_params_keep_their_order() {
    let line = "ferry/1 stall=1 ext=a x-y=z max-line=4096 idle=1 max-name=255 min-rate=512 max-size=1 max-chunk=1048576 max-eager=0\n";
    let (hello, used) = decode_hello(line.as_bytes()).expect("valid greeting");
    assert_eq!(used, line.len());
    assert_eq!(hello.to_bytes(), line.as_bytes());
    let crate::Hello::Greeting(g) = hello else {
        panic!("a greeting");
    };
    assert_eq!(g.min_rate(), Some(512));
    assert!(
        g.other_params()
            .iter()
            .all(|(k, _)| k.as_str() != "min-rate")
    );
}

/// The `tree` extension's invalid lines get ferry/1's answers (ERR-6, TREE-3, TREE-5,
/// TREE-11): 510 for a bad path, 502 (closing) for a put line that does not parse up to its
/// path, 500 for the rest.
#[test]
fn tree_lines_are_sorted_like_ferry_1_lines() {
    use crate::tree::decode_tree_request;
    for (line, code) in [
        (&b"mkdir a/../b\n"[..], Code::BAD_NAME),
        (b"list recursive /\n", Code::BAD_NAME),
        (b"get 0 a//b\n", Code::BAD_NAME),
        (b"put 3 new wait a/\n", Code::BAD_NAME),
        (b"put 3 new now .ferry-staging/x\n", Code::BAD_NAME),
        (b"rename 1 a a/.b\n", Code::BAD_NAME),
        (b"put 3 new soon a/b\n", Code::PROTOCOL),
        (b"put -3 new now a/b\n", Code::PROTOCOL),
        (b"rename 7 a b\n", Code::SYNTAX),
        (b"rename 2000 a b\n", Code::SYNTAX),
        (b"list digests,digests .\n", Code::SYNTAX),
        (b"enable\n", Code::SYNTAX),
        (b"get a/b\n", Code::SYNTAX),
    ] {
        let e = invalid(decode_tree_request(line));
        assert_eq!(e.reply_code(), code, "{:?}", String::from_utf8_lossy(line));
        assert_eq!(e.line_len, Some(line.len()));
        assert_eq!(
            e.reply_code().closes_connection(),
            code == Code::PROTOCOL,
            "{line:?}"
        );
    }
    let mut long = b"mkdir ".to_vec();
    long.resize(MAX_LINE + 10, b'a');
    long.push(b'\n');
    assert_eq!(
        invalid(decode_tree_request(&long)).reply_code(),
        Code::LINE_TOO_LONG
    );
}
