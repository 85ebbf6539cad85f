//! Space (issue #14, item 4; PUT-2, PUT-22, PUT-23): concurrent puts whose SIZEs add up to
//! more than the served folder may take. The folder's quota makes the limit exact (the free
//! space of the real disk cannot be controlled from a test; ferry-store's
//! `reservations_share_the_free_space_of_a_small_tmpfs` checks the same reservation against a
//! real file system's free space).

use std::time::Duration;

use ferry_fault_tests::{Impl, RawSession, TestServer, eventually, file_name, random_bytes};
use ferry_wire::{Digest, PutFlow, PutMode, Reply, Request, encode_payload};

const QUOTA: u64 = 100_000;
const SIZE: usize = 30_000;
const CLIENTS: usize = 10;

fn put_line(size: usize, name: &str) -> Request {
    Request::Put {
        size: size as u64,
        mode: PutMode::New,
        flow: PutFlow::Wait,
        name: file_name(name),
    }
}

fn payload(data: &[u8], digest: Digest) -> Vec<u8> {
    let mut out = Vec::new();
    encode_payload(data, digest, &mut out);
    out
}

/// Ten sessions send `put 30000 new wait` at once into a folder with a 100,000-octet quota:
/// exactly three get `go`, the other seven `err 432` before sending any data, and their
/// sessions go on. While the three hold their reservations, an eager put that would exceed
/// the quota gets 432 too (after its payload, PUT-9). Then one upload completes, one sends a
/// wrong digest (433) and one disconnects halfway: the two failed ones give their
/// reservations back, so a put of the 70,000 octets left fits, and only the two complete
/// files are ever visible.
fn concurrent_puts_over_quota(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.quota = Some(QUOTA);
        c.stall_timeout = Duration::from_secs(5);
    });
    let addr = server.addr;
    let replies: Vec<(usize, RawSession, Reply)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                scope.spawn(move || {
                    let mut s = RawSession::connect(addr);
                    s.expect_greeting();
                    s.send_request(&put_line(SIZE, &format!("f{i}")));
                    let reply = s.read_reply();
                    (i, s, reply)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let mut granted = Vec::new();
    let mut refused = 0;
    for (i, mut s, reply) in replies {
        match reply {
            Reply::Go => granted.push((i, s)),
            Reply::Err(e) if e.code.get() == 432 => {
                refused += 1;
                // No payload was sent, and the session goes on (PUT-3); nothing is visible.
                s.send_request(&Request::Dir);
                match s.read_reply() {
                    Reply::DirOk { count: 0 } => {}
                    other => panic!("{imp}: dir after a refused put: {other:?}"),
                }
            }
            other => panic!("{imp}: put {i}: expected go or err 432, got {other:?}"),
        }
    }
    assert_eq!(
        (granted.len(), refused),
        (3, CLIENTS - 3),
        "{imp}: 3 × {SIZE} fit a quota of {QUOTA}"
    );
    assert!(
        server.visible_names().is_empty(),
        "{imp}: a file is visible"
    );

    // An eager put does not fit either while the three hold their reservations.
    let mut eager = server.session();
    match eager.put_now("eager", PutMode::New, &random_bytes(1, 20_000)) {
        Reply::Err(e) if e.code.get() == 432 => {}
        other => panic!("{imp}: eager put over the quota: {other:?}"),
    }

    let [(a, mut ok), (b, mut cut), (c, mut corrupt)]: [(usize, RawSession); 3] =
        granted.try_into().expect("three");
    let data = random_bytes(2, SIZE);
    // One completes.
    ok.send(&payload(&data, Digest::of(&data)));
    match ok.read_reply() {
        Reply::PutOk { size, .. } if size == SIZE as u64 => {}
        other => panic!("{imp}: put f{a}: {other:?}"),
    }
    // One sends a wrong digest: 433, its reservation given back at once.
    corrupt.send(&payload(&data, Digest::of(b"something else")));
    corrupt.expect_err(433);
    // One sends half its payload and disconnects (PUT-16).
    let half = payload(&data, Digest::of(&data));
    cut.send(&half[..half.len() / 2]);
    drop(cut);

    // 30,000 stored: the 70,000 left fit once the cut upload is gone (the server notices the
    // disconnection on its own time: retried until then, at most 10 s).
    let late = random_bytes(3, 70_000);
    let mut s = server.session();
    let mut last = None;
    let fits = eventually(Duration::from_secs(10), || {
        s.send_request(&put_line(late.len(), "late"));
        match s.read_reply() {
            Reply::Go => true,
            other => {
                last = Some(other);
                false
            }
        }
    });
    assert!(fits, "{imp}: the failed uploads kept their space: {last:?}");
    s.send(&payload(&late, Digest::of(&late)));
    match s.read_reply() {
        Reply::PutOk { .. } => {}
        other => panic!("{imp}: put late: {other:?}"),
    }
    // The quota is full now: one more octet is refused.
    s.send_request(&put_line(1, "one-more"));
    s.expect_err(432);

    let a_name = format!("f{a}");
    let mut want = vec![a_name.clone(), "late".to_owned()];
    want.sort();
    assert_eq!(
        server.visible_names(),
        want,
        "{imp}: f{b}, f{c} not visible"
    );
    assert_eq!(server.read_file(&a_name).as_deref(), Some(&data[..]));
    assert_eq!(server.read_file("late").as_deref(), Some(&late[..]));
    assert!(server.wait_staging_empty(), "{imp}: staging debris");
    println!(
        "SPACE|{imp}|{CLIENTS} × put {SIZE} wait, quota {QUOTA}|3 go, {refused} × 432; \
         eager over quota → 432; after ok + 433 + cut, put 70000 → go, ok; 1 more → 432"
    );
}

#[test]
fn concurrent_puts_over_quota_threads() {
    concurrent_puts_over_quota(Impl::Threads);
}
#[test]
fn concurrent_puts_over_quota_async_std() {
    concurrent_puts_over_quota(Impl::AsyncStd);
}
#[test]
fn concurrent_puts_over_quota_tokio() {
    concurrent_puts_over_quota(Impl::Tokio);
}
#[test]
fn concurrent_puts_over_quota_smol() {
    concurrent_puts_over_quota(Impl::Smol);
}
