#![no_main]
//! The server session core (`ferry_proto::server`) in memory: arbitrary client octets in
//! arbitrary pieces, time passing, a client that stops reading, EOF, a shutdown and storage
//! faults, with no socket, no file and a virtual clock. Asserts: no panic; the session sends
//! the greeting first; every deadline it asks for lies ahead of its clock, within its longest
//! timeout; a file appears in the folder only after `ok put` with its size and digest; an
//! upload never outlives its session; the session ends once the client is gone and the clock
//! passed its timeouts; the optional driver paths (`Harness::fast`) change no octet; nor
//! does a digest cache (`Harness::cache`: gets of files whose digest is known read only
//! from their offset), nor, when no storage fault is injected, sending chunk data straight
//! from the file (`Harness::send_files`).

use std::time::Duration;

use arbitrary::Arbitrary;
use ferry_proto::memory::Harness;
use ferry_proto::server::{Action, SessionConfig};
use ferry_wire::{Code, Digest};
use libfuzzer_sys::fuzz_target;

const GREETING: &[u8] = b"ferry/1 max-line=4096 max-name=255 max-size=65536 max-chunk=1048576 ext=tree max-eager=4096 idle=2 stall=1\n";

#[derive(Debug, Clone, Arbitrary)]
enum Op {
    /// Octets from the client.
    Send(Vec<u8>),
    /// Time passes (milliseconds).
    Wait(u16),
    /// The client accepts at most this many more octets (None: all).
    Window(Option<u16>),
    /// The next storage operation fails.
    Fault(bool),
    /// The server shuts down, with this grace in milliseconds.
    Shutdown(u16),
}

fuzz_target!(|ops: Vec<Op>| {
    // The same script through the plain driver paths and through the optional ones an
    // overlapping driver takes (buffers lent while idle, uploads read straight into the
    // upload, file pieces swapped in): the session must not be able to tell.
    let plain = play(&ops, false, false, false);
    let fast = play(&ops, true, false, false);
    assert!(
        plain.0 == fast.0,
        "the optional paths changed the octets sent"
    );
    assert_eq!(plain.1, fast.1, "the optional paths changed the folder");
    let cached = play(&ops, true, true, false);
    assert!(plain.0 == cached.0, "known digests changed the octets sent");
    assert_eq!(plain.1, cached.1, "known digests changed the folder");
    // A read fault hits a chunk sent from the file after its head: zeros, then the abort.
    let sendfile = play(&ops, false, true, true);
    if !ops.iter().any(|op| matches!(op, Op::Fault(_))) {
        assert!(
            plain.0 == sendfile.0,
            "sending from the file changed the octets sent"
        );
        assert_eq!(
            plain.1, sendfile.1,
            "sending from the file changed the folder"
        );
    }
});

fn play(
    ops: &[Op],
    fast: bool,
    cache: bool,
    send_files: bool,
) -> (Vec<u8>, std::collections::BTreeMap<String, Vec<u8>>) {
    let cfg = SessionConfig {
        greeting: GREETING.to_vec(),
        read_only: false,
        max_size: 65536,
        max_eager: 4096,
        idle: Duration::from_secs(2),
        stall: Duration::from_secs(1),
        min_rate: 1024,
        chunk_patience: Duration::from_secs(5),
        upload_input: ferry_proto::server::UPLOAD_INPUT,
        memory: ferry_proto::server::MemoryBudget::new(3 << 20),
        listing_memory: ferry_proto::server::MemoryBudget::new(1 << 20),
        auth: None,
        // The `tree` extension's requests reach the core (and the harness's folder).
        tree: true,
    };
    let longest = Duration::from_secs(2 + 1 + 5 + 1);
    let mut h = Harness::new(cfg);
    h.fast = fast;
    h.cache = cache;
    h.send_files = send_files;
    h.files.insert("seed".into(), vec![b'x'; 3000]);
    for op in ops.iter().take(64).cloned() {
        match op {
            Op::Send(bytes) => {
                h.client(&bytes);
            }
            Op::Wait(ms) => {
                h.wait(Duration::from_millis(u64::from(ms)));
            }
            Op::Window(w) => h.window = w.map(usize::from),
            Op::Fault(permanent) => h.faults.push(if permanent {
                Code::DENIED
            } else {
                Code::STORAGE
            }),
            Op::Shutdown(ms) => {
                let hard = h.now + Duration::from_millis(u64::from(ms));
                h.s.shutdown(hard);
            }
        }
        h.run();
        check_deadline(&h, longest);
    }
    assert!(h.sent.starts_with(GREETING) || h.sent.len() < GREETING.len());
    // The client goes away and reads everything: the session must end.
    h.window = None;
    h.eof = true;
    for _ in 0..16 {
        if h.finished().is_some() {
            break;
        }
        if h.draining() {
            h.s.drained();
        }
        h.wait(longest);
    }
    assert!(
        h.finished().is_some(),
        "the session did not end: {:?}",
        h.waiting
    );
    assert!(h.upload.is_none(), "an upload outlived its session");
    // Every file but the seed was confirmed with `ok put SIZE DIGEST`.
    let text = String::from_utf8_lossy(&h.sent).into_owned();
    for (name, data) in &h.files {
        if name == "seed" {
            continue;
        }
        let ok = format!("ok put {} {}\n", data.len(), Digest::of(data));
        assert!(text.contains(&ok), "{name} stored without {ok:?}");
    }
    (h.sent, h.files)
}

fn check_deadline(h: &Harness, longest: Duration) {
    match &h.waiting {
        Some(
            Action::Send { deadline }
            | Action::SendFile { deadline, .. }
            | Action::Receive { deadline },
        ) => {
            assert!(
                *deadline >= h.now || h.s.is_shutting_down(),
                "deadline in the past"
            );
            assert!(*deadline <= h.now + longest, "deadline too far ahead");
        }
        Some(Action::Drain { until }) => assert!(*until <= h.now + longest),
        _ => {}
    }
}
