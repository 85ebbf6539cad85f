//! insta snapshots that lock the exact octets of every message kind. A change to any of
//! these is a change to the wire format: it needs a spec change first.

use crate::code::Code;
use crate::digest::Digest;
use crate::message::{
    ChunkLen, Entry, ErrorReply, Frame, Greeting, Hello, Limits, PutFlow, PutMode, Reply, Request,
    encode_payload,
};
use crate::name::FileName;
use crate::text::{ExtName, ParamName, ParamValue, Version};
use crate::time::Timestamp;

/// Shows octets as text, escaping LF as `\n` + newline, CR as `\r` and non-UTF-8 as `\xHH`.
fn show(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("valid name")
}

fn t() -> Timestamp {
    Timestamp::from_fields(2026, 11, 24, 19, 22, 8).expect("valid time")
}

#[test]
fn requests() {
    let mut out = Vec::new();
    for r in [
        Request::Dir,
        Request::Get {
            offset: 0,
            name: name("射频仿真.pptx"),
        },
        Request::Get {
            offset: 1_048_576,
            name: name("my report (final).pdf"),
        },
        Request::Put {
            size: 0,
            mode: PutMode::New,
            flow: PutFlow::Now,
            name: name("empty"),
        },
        Request::Put {
            size: 18_446_744_073_709_551_615,
            mode: PutMode::Replace,
            flow: PutFlow::Wait,
            name: name("天线15.doc"),
        },
        Request::Version(Version::V1),
        Request::Close,
    ] {
        r.encode(&mut out);
    }
    insta::assert_snapshot!(show(&out));
}

#[test]
fn replies() {
    let mut out = Vec::new();
    for r in [
        Reply::DirOk { count: 2 },
        Reply::GetOk {
            size: 5,
            mtime: t(),
        },
        Reply::Go,
        Reply::PutOk {
            size: 5,
            digest: Digest::of(b"hello"),
        },
        Reply::VersionOk(Version::V1),
        Reply::Bye,
    ] {
        r.encode(&mut out);
    }
    for &code in Code::ALL {
        Reply::Err(ErrorReply::new(code, code.name().unwrap_or("?"))).encode(&mut out);
    }
    Reply::Err(ErrorReply {
        code: Code::NOT_FOUND,
        text: None,
    })
    .encode(&mut out);
    insta::assert_snapshot!(show(&out));
}

#[test]
fn hello() {
    let mut out = Vec::new();
    Hello::Greeting(Greeting::new(Limits::default())).encode(&mut out);
    let g = Greeting::new(Limits {
        max_size: 100,
        max_eager: 0,
        ..Limits::default()
    })
    .with_versions(Version::V1, &[Version::new(2).expect("valid")])
    .with_extension(ExtName::new("starttls").expect("valid"))
    .and_then(|g| {
        g.with_param(
            ParamName::new("x-vendor").expect("v"),
            ParamValue::new("acme").expect("v"),
        )
    })
    .expect("fits a line");
    Hello::Greeting(g).encode(&mut out);
    Hello::Refused(ErrorReply::new(Code::BUSY, "busy")).encode(&mut out);
    insta::assert_snapshot!(show(&out));
}

#[test]
fn listing() {
    let mut out = Vec::new();
    Reply::DirOk { count: 3 }.encode(&mut out);
    for (size, n) in [(0, "empty"), (12_345, "天线15.doc"), (7, "射频仿真.pptx")] {
        Entry {
            size,
            mtime: t(),
            name: name(n),
        }
        .encode(&mut out);
    }
    insta::assert_snapshot!(show(&out));
}

#[test]
fn payloads() {
    let mut out = Vec::new();
    encode_payload(b"hello", Digest::of(b"hello"), &mut out);
    encode_payload(b"", Digest::of(b""), &mut out);
    let every: Vec<u8> = (0..=255u8).collect();
    encode_payload(&every, Digest::of(&every), &mut out);
    Frame::Data(ChunkLen::MAX).encode(&mut out);
    out.extend_from_slice(b"<1048576 octets>\n");
    Frame::Abort(ErrorReply::new(
        Code::CHANGED,
        "file changed while being sent",
    ))
    .encode(&mut out);
    insta::assert_snapshot!(show(&out));
}

/// The `auth` extension (section 16): requests, replies, its codes and the greeting param.
#[test]
fn auth_extension() {
    use crate::auth::{self, AuthReply, AuthRequest, Mechanism, UserName};
    let alice = UserName::new("alice").expect("user");
    let mut out = Vec::new();
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let sig: [u8; 64] = std::array::from_fn(|i| 255 - i as u8);
    for r in [
        AuthRequest::Ed25519 {
            user: alice.clone(),
            public_key: key,
            signature: sig,
        },
        AuthRequest::Scram {
            plus: true,
            client_first: b"p=ferry-exporter,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL".to_vec(),
        },
        AuthRequest::Scram {
            plus: false,
            client_first: b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL".to_vec(),
        },
        AuthRequest::Final {
            client_final:
                b"c=cD1mZXJyeS1leHBvcnRlciws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAA"
                    .to_vec(),
        },
    ] {
        out.extend_from_slice(&r.encode());
    }
    for r in [
        AuthReply::More {
            server_first: b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
                .to_vec(),
        },
        AuthReply::Ok {
            user: alice.clone(),
            server_final: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()),
        },
        AuthReply::Ok {
            user: alice,
            server_final: None,
        },
    ] {
        out.extend_from_slice(&r.encode());
    }
    for code in auth::CODES {
        Reply::Err(ErrorReply::new(
            *code,
            auth::code_name(*code).expect("named"),
        ))
        .encode(&mut out);
    }
    out.extend_from_slice(format!("auth={}\n", auth::param_value(&Mechanism::ALL)).as_bytes());
    insta::assert_snapshot!(show(&out));
}

#[test]
fn tree_extension() {
    use crate::path::TreePath;
    use crate::tree::{self, EntryKind, Folder, ListEntry, ListOptions, TreeReply, TreeRequest};
    let path = |s: &str| TreePath::new(s).expect("valid path");
    let mut out = Vec::new();
    let mut requests = vec![TreeRequest::Enable(ExtName::new("tree").expect("ext"))];
    for (digests, recursive) in [(false, false), (true, false), (false, true), (true, true)] {
        requests.push(TreeRequest::List {
            options: ListOptions { digests, recursive },
            folder: Folder::Root,
        });
    }
    requests.extend([
        TreeRequest::List {
            options: ListOptions::default(),
            folder: Folder::Path(path("射频/天线")),
        },
        TreeRequest::Mkdir(path("my docs")),
        TreeRequest::Rmdir(path("a/b")),
        TreeRequest::Delete(path("a/b/report (final).pdf")),
        TreeRequest::Rename {
            from: path("a b/天线15.doc"),
            to: path("c/d e.doc"),
        },
        TreeRequest::Get {
            offset: 1024,
            path: path("射频/仿真.pptx"),
        },
        TreeRequest::Put {
            size: 5,
            mode: PutMode::New,
            flow: PutFlow::Now,
            path: path("a/hello.txt"),
        },
        TreeRequest::Put {
            size: 0,
            mode: PutMode::Replace,
            flow: PutFlow::Wait,
            path: path("a/b/empty"),
        },
    ]);
    for r in requests {
        r.encode_into(&mut out);
    }
    for r in [
        TreeReply::Enabled(ExtName::new("tree").expect("ext")),
        TreeReply::ListOk { count: 3 },
        TreeReply::Mkdir,
        TreeReply::Rmdir,
        TreeReply::Delete,
        TreeReply::Rename,
    ] {
        r.encode_into(&mut out);
    }
    for e in [
        ListEntry {
            kind: EntryKind::Folder,
            mtime: t(),
            path: path("a"),
        },
        ListEntry {
            kind: EntryKind::File {
                size: 5,
                digest: Some(Digest::of(b"hello")),
            },
            mtime: t(),
            path: path("a/hello.txt"),
        },
        ListEntry {
            kind: EntryKind::File {
                size: 0,
                digest: None,
            },
            mtime: t(),
            path: path("天线15.doc"),
        },
    ] {
        e.encode_into(&mut out);
    }
    for code in tree::CODES {
        Reply::Err(ErrorReply::new(
            *code,
            tree::code_name(*code).expect("named"),
        ))
        .encode(&mut out);
    }
    insta::assert_snapshot!(show(&out));
}
