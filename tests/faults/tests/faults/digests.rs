//! #14 item 3: the digest cache (`ferry_store::digests`). A resumed get of a file whose
//! digest the server remembers reads only from its offset; a stale entry would send the old
//! file's digest with the new file's octets — a download that fails its check at best, and
//! a corruption if the client's prefix came from the old file. So: files replaced under the
//! same name between resumed gets, in every way a name can get new content, on every
//! implementation; each resumed get must end with the digest of what the name holds now.

use std::time::Duration;

use ferry_fault_tests::file_name;
use ferry_fault_tests::{Impl, TestServer, client_options, random_bytes};
use ferry_store::digests::{MIN_AGE, MIN_SIZE};
use ferry_sync::client::{Client, GetOptions};
use ferry_test_support::{PayloadEnd, RawSession};
use ferry_wire::{Digest, Hasher, PutMode, Reply, Request};

/// `get SIZE-1 NAME` with the client's prefix taken from `expected`: the digest the server
/// sends must be that of `expected` (the receiver checks it against prefix + last octet).
fn resume_last_octet(s: &mut RawSession, name: &str, expected: &[u8]) -> PayloadEnd {
    let offset = expected.len() as u64 - 1;
    s.send_request(&Request::Get {
        offset,
        name: file_name(name),
    });
    let size = match s.read_reply() {
        Reply::GetOk { size, .. } => size,
        other => panic!("unexpected reply to a resumed get: {other:?}"),
    };
    assert_eq!(size, expected.len() as u64);
    let mut prefix = Hasher::new();
    prefix.update(&expected[..offset as usize]);
    let mut last = Vec::new();
    let end = s.read_payload_with(size - offset, prefix, |d| last.extend_from_slice(d));
    assert_eq!(last, expected[offset as usize..]);
    end
}

#[track_caller]
fn assert_digest(imp: Impl, what: &str, end: PayloadEnd, data: &[u8]) {
    match end {
        PayloadEnd::Complete(d) if d == Digest::of(data) => {}
        other => panic!("{imp}: {what}: expected the digest of the new content, got {other:?}"),
    }
}

fn replaced_between_resumed_gets(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let size = MIN_SIZE as usize + 3;
    let a = random_bytes(31, size);
    let b = random_bytes(32, size);
    let c = random_bytes(33, size);
    let d = random_bytes(34, size);
    server.write_file("f.bin", &a);
    server.write_file("d.bin", &d);
    // The server remembers only digests of files changed at least MIN_AGE before the get
    // (racy timestamps): wait, so that the cache is in play.
    std::thread::sleep(MIN_AGE + Duration::from_millis(200));
    let mut s = server.session();

    // Hashed whole once (remembered), then resumed: the remembered digest is right.
    let (got, end) = s.get("f.bin").expect("get f.bin");
    assert!(got == a);
    assert_digest(imp, "first get", end, &a);
    assert_digest(
        imp,
        "resumed get",
        resume_last_octet(&mut s, "f.bin", &a),
        &a,
    );

    // Rewritten in place, same size, the modification time set back to what it was: the
    // same device, inode, size and mtime — only the status-change time tells.
    let path = server.root.join("f.bin");
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&path, &b).expect("rewrite in place");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .expect("set the mtime back");
    let now = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(now, mtime, "the test needs the old mtime back");
    let end = resume_last_octet(&mut s, "f.bin", &b);
    assert_digest(imp, "rewritten in place, mtime kept", end, &b);

    // Replaced by a put (a new file renamed over the name).
    match s.put_wait("f.bin", PutMode::Replace, &c) {
        Reply::PutOk { .. } => {}
        other => panic!("{imp}: put replace: {other:?}"),
    }
    assert_digest(
        imp,
        "replaced by a put",
        resume_last_octet(&mut s, "f.bin", &c),
        &c,
    );

    // Another old file whose digest is remembered, renamed over the name.
    let (_, end) = s.get("d.bin").expect("get d.bin");
    assert_digest(imp, "get d.bin", end, &d);
    std::fs::rename(server.root.join("d.bin"), &path).expect("rename over");
    assert_digest(
        imp,
        "renamed over",
        resume_last_octet(&mut s, "f.bin", &d),
        &d,
    );
    // A rename sets the file's ctime: nothing is remembered for it until it has settled.
    let (_, end) = s.get("f.bin").expect("get f.bin");
    assert_digest(imp, "full get after rename", end, &d);
    assert_digest(
        imp,
        "resumed again",
        resume_last_octet(&mut s, "f.bin", &d),
        &d,
    );
    println!("DIGESTS|{imp}|replaced-between-resumed-gets|new digest every time");
}

/// A file whose digest is known shrinks to 1000 octets while it is downloaded (on the
/// threaded server its chunks then go straight from the file with `sendfile`): the payload
/// still ends with `abort 430` (GET-9), the client writes nothing, the session goes on.
fn truncated_while_sent_with_a_known_digest(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.stall_timeout = Duration::from_secs(2));
    let data = random_bytes(35, 24 << 20);
    server.write_file("shrinks.bin", &data);
    std::thread::sleep(MIN_AGE + Duration::from_millis(200));
    let mut c = Client::connect_with(server.addr, &client_options()).expect("connect");
    let local = tempfile::tempdir().expect("tempdir");
    let first = local.path().join("first.bin");
    c.get_to_path(
        &file_name("shrinks.bin"),
        &first,
        &GetOptions::default(),
        &mut |_| {},
    )
    .expect("the first get (remembers the digest)");
    crate::storage::get_of_a_shrinking_file(imp, &server, &mut c, local.path());
    println!("DIGESTS|{imp}|truncated-with-known-digest|Refused(430), session kept");
}

per_impl!(replaced_between_resumed_gets: replaced_between_resumed_gets_threads = Impl::Threads, replaced_between_resumed_gets_async_std = Impl::AsyncStd, replaced_between_resumed_gets_tokio = Impl::Tokio, replaced_between_resumed_gets_smol = Impl::Smol);
per_impl!(truncated_while_sent_with_a_known_digest: truncated_known_digest_threads = Impl::Threads, truncated_known_digest_async_std = Impl::AsyncStd, truncated_known_digest_tokio = Impl::Tokio, truncated_known_digest_smol = Impl::Smol);
