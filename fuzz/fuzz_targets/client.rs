#![no_main]
//! Arbitrary server octets against the threaded client library. The first octet picks the
//! operation (dir, get, put, or a recursive `list` of the `tree` extension); the rest is what
//! the "server" sends, in pieces, before it closes. Asserts: no panic; the client writes
//! nothing outside its destination folder; only `f` (and its `.ferry-part`) may appear there;
//! a successful get left a file whose size and digest are exactly what the client reported;
//! a listing the client accepts has its paths in strictly ascending order of their octets
//! (TREE-6, TREE-14: unordered or repeated paths make it not valid).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use ferry_sync::client::{Client, ClientOptions, GetOptions, PutOptions};
use ferry_wire::tree::{Folder, ListOptions};
use ferry_wire::{Digest, FileName};

fn listener() -> &'static TcpListener {
    static L: OnceLock<TcpListener> = OnceLock::new();
    L.get_or_init(|| TcpListener::bind("127.0.0.1:0").expect("bind"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&op, server_bytes)) = data.split_first() else {
        return;
    };
    let listener = listener();
    let addr = listener.local_addr().expect("addr");
    let bytes = server_bytes.to_vec();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut rest = &bytes[..];
        let mut k = bytes.len();
        while !rest.is_empty() {
            k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let n = (k >> 16) % 512 + 1;
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            if s.write_all(piece).is_err() {
                break;
            }
            rest = tail;
        }
        let _ = s.shutdown(Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });

    let parent = tempfile::tempdir().expect("tempdir");
    let dest = parent.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    let name = FileName::new("f").expect("valid");
    let opts = ClientOptions {
        read_timeout: Some(Duration::from_secs(5)),
        write_timeout: Some(Duration::from_secs(5)),
        ..ClientOptions::default()
    };
    let stream = TcpStream::connect(addr).expect("connect");
    if let Ok(mut client) = Client::from_stream(stream, &opts) {
        match op % 4 {
            0 => {
                let _ = client.dir();
            }
            1 => {
                let get = GetOptions {
                    resume: op & 4 != 0,
                    ..GetOptions::default()
                };
                if let Ok(report) = client.get_to_path(&name, &dest.join("f"), &get, &mut |_| {}) {
                    let content = std::fs::read(dest.join("f")).expect("reported file exists");
                    assert_eq!(content.len() as u64, report.size);
                    assert_eq!(
                        Digest::of(&content),
                        report.digest,
                        "success with a wrong digest"
                    );
                }
            }
            3 => {
                let options = ListOptions {
                    digests: op & 4 != 0,
                    recursive: true,
                };
                if let Ok(listing) = client.list(Folder::Root, options) {
                    let paths: Vec<&[u8]> = listing
                        .entries
                        .iter()
                        .map(|e| e.path.as_str().as_bytes())
                        .collect();
                    assert!(
                        paths.windows(2).all(|w| w[0] < w[1]),
                        "an accepted listing out of order or with a path twice: {paths:?}"
                    );
                }
            }
            _ => {
                let body = b"hello, ferry";
                let _ = client.put_from_reader(
                    &name,
                    body.len() as u64,
                    &mut &body[..],
                    &PutOptions::default(),
                    &mut |_| {},
                );
            }
        }
        drop(client);
    }
    server.join().expect("fake server");
    let outside: Vec<_> = std::fs::read_dir(parent.path())
        .expect("parent")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        outside,
        ["dest"],
        "the client wrote outside its destination"
    );
    for e in std::fs::read_dir(&dest).expect("dest").flatten() {
        let n = e.file_name();
        assert!(n == "f" || n == "f.ferry-part", "unexpected file {n:?}");
    }
});
