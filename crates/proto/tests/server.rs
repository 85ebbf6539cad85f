//! The server session in memory, on a virtual clock: no socket, no file, no sleep. Each test
//! is a script — octets from the client, time passing — and checks the octets the session
//! sends and what it asks of its storage.

use std::time::Duration;

use ferry_proto::memory::Harness;
use ferry_proto::server::{Action, End, MemoryBudget, SessionConfig};
use ferry_wire::{Code, Digest};

const GREETING: &[u8] = b"ferry/1 max-line=4096 max-name=255 max-size=1000000 max-chunk=1048576 max-eager=100 idle=300 stall=60\n";

fn config() -> SessionConfig {
    ferry_proto::memory::test_config(GREETING)
}

#[test]
fn greets_first_then_answers_dir_and_close() {
    let mut h = Harness::new(config());
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.run();
    assert_eq!(h.sent, GREETING);
    h.client(b"dir\nclose\n").run();
    assert_eq!(h.replies(), "ok dir 1\n5 2024-03-01T08:00:00Z a.txt\nbye\n");
    assert!(h.draining(), "{:?}", h.waiting);
    h.s.drained();
    h.run();
    assert_eq!(h.finished(), Some(End::Bye));
}

#[test]
fn put_wait_goes_then_commits_and_get_from_an_offset_sends_the_tail() {
    let mut h = Harness::new(config());
    let data: Vec<u8> = (0..250u32).map(|i| (i % 251) as u8).collect();
    let mut put = b"put 250 new wait f.bin\n".to_vec();
    h.client(&put).run();
    assert_eq!(h.replies(), "go\n");
    put.clear();
    put.extend_from_slice(b"data 250\n");
    put.extend_from_slice(&data);
    put.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    h.client(&put).run();
    assert_eq!(h.files.get("f.bin"), Some(&data));
    assert_eq!(h.ops, ["begin f.bin 250", "commit"]);
    h.sent.clear();
    h.client(b"get 200 f.bin\n").run();
    let mut want = b"ok get 250 2024-03-01T08:00:00Z\ndata 50\n".to_vec();
    want.extend_from_slice(&data[200..]);
    want.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    assert_eq!(h.sent, want);
}

#[test]
fn pipelined_requests_are_answered_in_order_in_one_send() {
    let mut h = Harness::new(config());
    h.run();
    h.sent.clear();
    h.client(b"get 0 nope\nbogus\ndir\n").run();
    assert_eq!(h.text(), "err 511 not-found\nerr 500 syntax\nok dir 0\n");
}

#[test]
fn idle_timeout_is_exact_and_closes_with_421() {
    let mut h = Harness::new(config());
    h.run();
    h.wait(Duration::from_secs(300) - Duration::from_nanos(1));
    assert_eq!(h.replies(), "");
    h.wait(Duration::from_nanos(1));
    assert_eq!(h.replies(), "err 421 timeout\n");
    assert!(h.draining());
}

#[test]
fn a_request_line_has_the_stall_timeout_from_its_first_octet() {
    let mut h = Harness::new(config());
    h.run();
    h.wait(Duration::from_secs(100));
    h.client(b"di").run();
    h.wait(Duration::from_secs(59));
    assert_eq!(h.replies(), "");
    h.wait(Duration::from_secs(1));
    assert_eq!(h.replies(), "err 421 timeout\n");
}

#[test]
fn an_upload_cut_by_eof_is_discarded_before_the_session_ends() {
    let mut h = Harness::new(config());
    h.client(b"put 10 new wait x.bin\n").run();
    assert_eq!(h.replies(), "go\n");
    h.client(b"data 10\nabc");
    h.eof = true;
    h.run();
    assert_eq!(h.ops, ["begin x.bin 10", "discard"]);
    assert_eq!(h.finished(), Some(End::Eof));
    assert!(h.files.is_empty());
}

#[test]
fn an_eager_upload_cut_by_eof_never_reaches_the_storage() {
    let mut h = Harness::new(config());
    h.client(b"put 10 new now x.bin\ndata 10\nabc");
    h.eof = true;
    h.run();
    assert!(h.ops.is_empty(), "{:?}", h.ops);
    assert_eq!(h.finished(), Some(End::Eof));
    assert!(h.files.is_empty());
}

#[test]
fn an_eager_put_is_stored_in_one_step_once_its_payload_has_arrived() {
    let mut h = Harness::new(config());
    h.run();
    h.client(b"put 5 new now f\ndata 3\nhel").run();
    assert!(
        h.ops.is_empty(),
        "nothing is begun before the payload is in"
    );
    h.client(format!("data 2\nloend {}\n", Digest::of(b"hello")).as_bytes())
        .run();
    assert_eq!(h.replies(), format!("ok put 5 {}\n", Digest::of(b"hello")));
    assert_eq!(h.ops, ["store f 5"]);
    assert_eq!(h.files["f"], b"hello");
}

/// The eager puts that are whole in the input are stored in one step, in order, and a
/// request of another kind after them sees what they stored.
#[test]
fn a_run_of_eager_puts_in_the_input_is_stored_in_one_step_in_order() {
    let mut h = Harness::new(config());
    h.run();
    let mut script = String::new();
    for i in 0..10 {
        let body = format!("file {i}");
        script += &format!(
            "put {} new now f{i}\ndata {}\n{body}end {}\n",
            body.len(),
            body.len(),
            Digest::of(body.as_bytes())
        );
    }
    // The same name again: the second `new` is refused, as it would be one at a time.
    script += &format!("put 1 new now f3\ndata 1\nxend {}\ndir\n", Digest::of(b"x"));
    h.client(script.as_bytes()).run();
    assert_eq!(h.store_steps, 1, "{:?}", h.ops);
    let replies = h.replies();
    let lines: Vec<&str> = replies.lines().collect();
    for (i, line) in lines[..10].iter().enumerate() {
        let body = format!("file {i}");
        assert_eq!(
            *line,
            format!("ok put {} {}", body.len(), Digest::of(body.as_bytes()))
        );
    }
    assert_eq!(lines[10], "err 512 exists");
    assert_eq!(lines[11], "ok dir 10");
    assert_eq!(h.files["f3"], b"file 3");
    assert_eq!(h.ops.last().map(String::as_str), Some("list"));
}

/// A put whose payload is not all there yet ends the run: the puts before it are stored and
/// answered without waiting for the network.
#[test]
fn a_run_of_eager_puts_is_answered_before_the_session_waits_for_input() {
    let mut h = Harness::new(config());
    h.run();
    let a = format!("put 1 new now a\ndata 1\naend {}\n", Digest::of(b"a"));
    let b = format!("put 1 new now b\ndata 1\nbend {}\n", Digest::of(b"b"));
    h.client(format!("{a}{b}put 2 new now c\ndata 2\nc").as_bytes())
        .run();
    assert_eq!(
        h.replies(),
        format!(
            "ok put 1 {}\nok put 1 {}\n",
            Digest::of(b"a"),
            Digest::of(b"b")
        )
    );
    assert_eq!(h.store_steps, 1);
    assert!(matches!(h.waiting, Some(Action::Receive { .. })));
    h.client(format!("cend {}\n", Digest::of(b"cc")).as_bytes())
        .run();
    assert!(
        h.replies()
            .ends_with(&format!("ok put 2 {}\n", Digest::of(b"cc")))
    );
    assert_eq!(h.store_steps, 2);
    assert_eq!(h.files.len(), 3);
}

/// PUT-2 before PUT-11 and PUT-15, and PUT-9: a refused eager put gets its refusal whatever
/// its trailer, although the storage is asked only once the payload is in.
#[test]
fn an_eager_put_gets_the_refusal_of_its_checks_before_433_or_434() {
    let mut h = Harness::new(config());
    h.files.insert("taken".into(), b"old".to_vec());
    h.run();
    let good = Digest::of(b"hello");
    let bad = Digest::of(b"other");
    let script = format!(
        "put 5 new now taken\ndata 5\nhelloend {bad}\n\
         put 5 new now taken\ndata 5\nhelloabort 430\n\
         put 5 new now taken\ndata 5\nhelloend {good}\n\
         put 5 new now free\ndata 5\nhelloend {bad}\n\
         put 5 new now free\ndata 5\nhelloabort 430\n"
    );
    h.client(script.as_bytes()).run();
    assert_eq!(
        h.replies(),
        "err 512 exists\nerr 512 exists\nerr 512 exists\nerr 433 corrupt\nerr 434 aborted\n"
    );
    assert_eq!(
        h.ops,
        [
            "store taken 5: exists",
            "store taken 5: exists",
            "store taken 5: exists",
            "store free 5: dropped",
            "store free 5: dropped",
        ]
    );
    assert_eq!(h.files["taken"], b"old");
    assert!(!h.files.contains_key("free"));
}

#[test]
fn an_eager_put_above_max_eager_closes_with_502_without_reading_the_payload() {
    let mut h = Harness::new(config());
    h.client(b"put 101 new now x.bin\n").run();
    assert_eq!(h.replies(), "err 502 protocol\n");
    assert!(h.ops.is_empty());
    assert!(h.draining());
}

#[test]
fn a_shutdown_ends_the_session_at_the_next_request_boundary_with_422() {
    let mut h = Harness::new(config());
    h.files.insert("a".into(), b"x".to_vec());
    h.run();
    let hard = h.now + Duration::from_secs(10);
    h.s.shutdown(hard);
    h.run();
    assert_eq!(h.replies(), "err 422 shutting-down\n");
}

#[test]
fn past_the_shutdown_deadline_a_get_ends_at_a_chunk_boundary_with_abort_422() {
    let mut h = Harness::new(config());
    let big = vec![7u8; 3 * 1_048_576];
    h.files.insert("big".into(), big);
    h.run();
    h.sent.clear();
    // The client accepts the reply line, the first chunk and half of the second.
    h.window = Some(40 + 2 * 1_048_576 - 524_288);
    h.client(b"get 0 big\n").run();
    assert!(matches!(h.waiting, Some(Action::Send { .. })));
    h.s.shutdown(h.now + Duration::from_secs(1));
    h.wait(Duration::from_secs(2));
    // Still within the chunk patience: the client takes the rest of the chunk.
    h.window = Some(usize::MAX);
    h.run();
    let text = h.sent.clone();
    let tail = String::from_utf8_lossy(&text[text.len() - 30..]).into_owned();
    assert!(tail.ends_with("abort 422 shutting-down\n"), "{tail:?}");
    let chunks = text.windows(13).filter(|w| w == b"data 1048576\n").count();
    assert_eq!(chunks, 2, "two whole chunks, then the abort");
    assert!(h.draining());
}

#[test]
fn a_client_that_accepts_nothing_is_dropped_after_the_stall_timeout() {
    let mut h = Harness::new(config());
    h.window = Some(0);
    h.run();
    h.wait(Duration::from_secs(59));
    assert_eq!(h.finished(), None);
    h.wait(Duration::from_secs(1));
    assert_eq!(h.finished(), Some(End::Dropped("peer accepts no output")));
}

#[test]
fn a_storage_write_failure_drops_the_upload_reads_past_the_payload_and_answers_431() {
    let mut h = Harness::new(config());
    h.run();
    h.client(b"put 5 new wait f\n").run();
    h.faults = vec![Code::STORAGE];
    let mut put = b"data 5\nhello".to_vec();
    put.extend_from_slice(format!("end {}\ndir\n", Digest::of(b"hello")).as_bytes());
    h.client(&put).run();
    assert_eq!(h.replies(), "go\nerr 431 storage\nok dir 0\n");
    assert_eq!(h.ops, ["begin f 5", "write failed", "discard", "list"]);
}

#[test]
fn a_storage_failure_of_an_eager_put_answers_431_and_the_session_goes_on() {
    let mut h = Harness::new(config());
    h.run();
    h.faults = vec![Code::STORAGE];
    let mut put = b"put 5 new now f\ndata 5\nhello".to_vec();
    put.extend_from_slice(format!("end {}\ndir\n", Digest::of(b"hello")).as_bytes());
    h.client(&put).run();
    assert_eq!(h.replies(), "err 431 storage\nok dir 0\n");
    assert_eq!(h.ops, ["store f 5: failed", "list"]);
    assert!(h.files.is_empty());
}

#[test]
fn a_read_failure_during_a_get_ends_its_payload_with_abort_431_and_the_session_goes_on() {
    let mut h = Harness::new(config());
    h.files.insert("f".into(), b"hello".to_vec());
    h.run();
    h.faults = vec![Code::STORAGE];
    h.client(b"get 0 f\ndir\n").run();
    let replies = h.replies();
    assert!(
        replies.contains("abort 431 storage\nok dir 1\n"),
        "{replies:?}"
    );
    assert!(!replies.contains("data "), "{replies:?}");
}

/// One long session — puts in both flows arriving in uneven pieces, a refused put, gets of
/// large files from offsets, a storage fault, idle time — played twice: through the plain
/// paths, and through the optional paths an overlapping driver takes (buffers lent while
/// idle, upload data read straight into the upload, file pieces swapped in). The session
/// must not be able to tell: the same octets, the same storage operations, the same files.
#[test]
fn the_optional_driver_paths_change_nothing_on_the_wire() {
    let big: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let play = |fast: bool| {
        let mut cfg = config();
        cfg.max_size = 10_000_000;
        let mut h = Harness::new(cfg);
        h.fast = fast;
        h.files.insert("big".into(), big.clone());
        h.run();
        h.client(b"put 2500000 new wait up.bin\n").run();
        let mut payload = Vec::new();
        for piece in big.chunks(700_000) {
            payload.extend_from_slice(format!("data {}\n", piece.len()).as_bytes());
            payload.extend_from_slice(piece);
        }
        payload.extend_from_slice(format!("end {}\n", Digest::of(&big)).as_bytes());
        for piece in payload.chunks(300_001) {
            h.client(piece).run();
        }
        h.wait(Duration::from_secs(10));
        h.client(b"put 3 new now e\ndata 3\nab").run();
        h.client(format!("cend {}\nget 1000000 big\n", Digest::of(b"abc")).as_bytes())
            .run();
        h.faults = vec![Code::STORAGE];
        h.client(b"put 4 new wait f\n").run();
        h.client(b"data 4\nwxyz").run();
        h.client(format!("end {}\nget 2499999 up.bin\ndir\n", Digest::of(b"wxyz")).as_bytes())
            .run();
        h.wait(Duration::from_secs(400));
        assert!(h.draining(), "{:?}", h.waiting);
        h.s.drained();
        h.run();
        (h.sent.clone(), h.ops.clone(), h.files.clone(), h.finished())
    };
    let plain = play(false);
    let fast = play(true);
    assert_eq!(plain.3, Some(End::Closed(Code::TIMEOUT)));
    assert_eq!(plain.2.get("up.bin"), Some(&big));
    assert_eq!(plain.2.get("e").map(Vec::as_slice), Some(&b"abc"[..]));
    assert!(!plain.2.contains_key("f"), "a failed upload leaves nothing");
    let text = String::from_utf8_lossy(&plain.0);
    assert!(
        text.contains("err 431 storage\nok get 2500000"),
        "{}",
        &text[text.len() - 400..]
    );
    assert!(plain.0 == fast.0, "the octets sent differ");
    assert_eq!(plain.1, fast.1);
    assert_eq!(plain.2, fast.2);
    assert_eq!(plain.3, fast.3);
}

#[test]
fn a_put_new_of_a_taken_name_is_refused_with_512_and_a_replace_goes_through() {
    let mut h = Harness::new(config());
    h.files.insert("f".into(), b"old".to_vec());
    h.run();
    h.sent.clear();
    h.client(b"put 3 new wait f\n").run();
    assert_eq!(h.text(), "err 512 exists\n");
    h.sent.clear();
    h.client(b"put 3 replace wait f\n").run();
    assert_eq!(h.text(), "go\n");
    let mut payload = b"data 3\nnew".to_vec();
    payload.extend_from_slice(format!("end {}\n", Digest::of(b"new")).as_bytes());
    h.client(&payload).run();
    assert_eq!(h.files.get("f").map(Vec::as_slice), Some(&b"new"[..]));
}

/// What `run` logs on this thread, as the fmt subscriber writes it. One global subscriber
/// writes each thread's events to that thread's buffer: a subscriber set for one thread only
/// (`with_default`) misses events when a test without one, on another thread, has cached
/// the callsites as uninteresting meanwhile.
fn logged(run: impl FnOnce()) -> String {
    use std::cell::RefCell;
    thread_local! {
        static LOG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    struct ThisThread;
    impl std::io::Write for ThisThread {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            LOG.with(|l| l.borrow_mut().extend_from_slice(b));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThisThread)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    LOG.with(|l| l.borrow_mut().clear());
    run();
    let text = LOG.with(|l| std::mem::take(&mut *l.borrow_mut()));
    String::from_utf8(text).expect("the log is UTF-8")
}

/// NAME-12: a name is logged quoted, with line-breaking and invisible characters escaped, so
/// it cannot forge a field or a line (#14).
#[test]
fn names_are_logged_quoted_and_escaped() {
    let forged = "x\u{2028}code=511 peer=10.6.6.6:1 name=payroll\u{202e}";
    let log = logged(|| {
        let mut h = Harness::new(config());
        h.client(format!("get 0 {forged}\n").as_bytes()).run();
        assert_eq!(h.replies(), "err 511 not-found\n");
    });
    let line = log
        .lines()
        .find(|l| l.contains("request"))
        .expect("a request event");
    assert!(
        line.contains(r#"name="x\u{2028}code=511 peer=10.6.6.6:1 name=payroll\u{202e}""#),
        "{line}"
    );
    assert!(
        !log.contains('\u{2028}') && !log.contains('\u{202e}'),
        "{log:?}"
    );
}

/// A session that pipelines requests as fast as it can logs a burst, then at most
/// LOG_PER_SECOND request events a second, and says how many it left out (#14).
#[test]
fn a_flood_of_requests_logs_a_burst_then_a_bounded_rate() {
    use ferry_proto::server::{LOG_BURST, LOG_PER_SECOND};
    let requests = 3 * LOG_BURST as usize;
    let log = logged(|| {
        let mut h = Harness::new(config());
        h.run();
        h.client("get 0 missing\n".repeat(requests).as_bytes())
            .run();
        assert_eq!(h.replies().lines().count(), requests);
        // One second later, another burst of requests: a second's worth is logged.
        h.wait(Duration::from_secs(1));
        h.client("get 0 missing\n".repeat(requests).as_bytes())
            .run();
        h.client(b"close\n").run();
        h.wait(Duration::from_secs(2));
        assert!(h.finished().is_some());
    });
    let events = log
        .lines()
        .filter(|l| l.contains(": request command="))
        .count();
    assert_eq!(events, LOG_BURST as usize + LOG_PER_SECOND as usize);
    let left_out: Vec<&str> = log.lines().filter(|l| l.contains("not logged")).collect();
    // The first count with the first event of the second burst; the second as the session ends.
    let first = requests - LOG_BURST as usize;
    let second = requests + 1 - LOG_PER_SECOND as usize; // (`close` is a request too)
    assert_eq!(left_out.len(), 2, "{left_out:?}");
    assert!(
        left_out[0].ends_with(&format!("left_out={first}")),
        "{left_out:?}"
    );
    assert!(
        left_out[1].ends_with(&format!("left_out={second}")),
        "{left_out:?}"
    );
}

/// A listing leaves a part at a time as the client takes it (the reply buffer stays small,
/// #14): with a client that accepts a few KiB at a time, every entry still arrives, in order,
/// and the next request is answered after the last of them.
#[test]
fn a_long_listing_is_sent_whole_and_in_order_a_part_at_a_time() {
    let mut h = Harness::new(config());
    let names: Vec<String> = (0..5000).map(|i| format!("file-{i:05}.txt")).collect();
    for n in &names {
        h.files.insert(n.clone(), b"x".to_vec());
    }
    h.run();
    h.sent.clear();
    h.client(b"dir\nget 0 file-00000.txt\n");
    // The client takes 3000 octets at a time until the session has nothing more to send.
    let mut taken = 0;
    for _ in 0..10_000 {
        h.window = Some(3000);
        h.run();
        taken += 1;
        if h.window != Some(0) {
            break;
        }
    }
    let text = h.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ok dir 5000"));
    for n in &names {
        let line = lines.next().expect("an entry");
        assert!(line.ends_with(&format!(" {n}")), "{line} for {n}");
    }
    assert_eq!(lines.next(), Some("ok get 1 2024-03-01T08:00:00Z"));
    assert!(taken > 50, "the client took the listing in parts ({taken})");
    // The whole listing is ~190 KB; the session never held more than a part of it to send.
    assert!(
        h.max_output <= 64 * 1024 + 300,
        "at most {} octets offered at once",
        h.max_output
    );
}

/// A session that announces `min-rate=1024` (TIME-9), with the stall timeout of 60 s.
fn paced() -> SessionConfig {
    SessionConfig {
        min_rate: 1024,
        ..config()
    }
}

#[test]
fn an_upload_dripped_slower_than_min_rate_times_out_although_each_octet_restarts_stall() {
    for eager in [false, true] {
        let mut h = Harness::new(paced());
        h.run();
        let line: &[u8] = if eager {
            b"put 100 new now f\ndata 100\n"
        } else {
            b"put 100000 new wait f\ndata 100000\n"
        };
        h.client(line).run();
        // One octet every 30 s: the stall timeout (60 s) alone would never fire.
        for _ in 0..2 {
            h.wait(Duration::from_secs(30));
            assert_eq!(h.finished(), None, "eager {eager}");
            assert!(!h.draining(), "eager {eager}: cut before stall");
            h.client(b"x").run();
        }
        // 60 s of grace, plus a second per 1024 octets moved: the next drip is too late.
        h.wait(Duration::from_secs(1));
        assert!(h.draining(), "eager {eager}: {:?}", h.waiting);
        assert!(
            h.replies().ends_with("err 421 timeout\n"),
            "{}",
            h.replies()
        );
        if !eager {
            assert_eq!(h.ops, ["begin f 100000", "discard"]);
        }
        assert!(h.files.is_empty());
    }
}

#[test]
fn an_upload_at_min_rate_is_never_cut() {
    let mut h = Harness::new(paced());
    h.run();
    let data = vec![b'a'; 200 * 1024];
    h.client(format!("put {} new wait f\n", data.len()).as_bytes())
        .run();
    assert_eq!(h.replies(), "go\n");
    // 1 KiB a second after a first pause of 59 s: the payload's average stays above the line
    // `min-rate × (t − stall)` the whole time, though far below min-rate until the end.
    h.wait(Duration::from_secs(59));
    let mut payload = format!("data {}\n", data.len()).into_bytes();
    payload.extend_from_slice(&data);
    payload.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    for piece in payload.chunks(1024) {
        h.client(piece).run();
        assert_eq!(h.finished(), None);
        h.wait(Duration::from_secs(1));
    }
    assert_eq!(
        h.replies(),
        format!("go\nok put {} {}\n", data.len(), Digest::of(&data))
    );
    assert_eq!(h.files["f"], data);
}

#[test]
fn a_download_taken_slower_than_min_rate_is_dropped() {
    let mut h = Harness::new(paced());
    h.files.insert("f".into(), vec![b'z'; 4 << 20]);
    h.run();
    // The client takes 1,000 octets every 10 s: progress well within the stall timeout.
    h.window = Some(0);
    h.client(b"get 0 f\n").run();
    let mut waited = 0;
    while h.finished().is_none() && waited < 600 {
        h.window = Some(1000);
        h.run();
        h.wait(Duration::from_secs(10));
        waited += 10;
    }
    assert_eq!(
        h.finished(),
        Some(End::Dropped("peer takes the payload slower than min-rate"))
    );
    // 60 s of grace and what 100 octets a second earn.
    assert!((60..=80).contains(&waited), "dropped after {waited} s");
}

#[test]
fn without_min_rate_a_dripped_upload_is_governed_by_stall_only() {
    let mut h = Harness::new(config());
    h.run();
    h.client(b"put 100000 new wait f\ndata 100000\n").run();
    for _ in 0..10 {
        h.wait(Duration::from_secs(30));
        h.client(b"x").run();
    }
    assert_eq!(h.finished(), None);
    assert!(!h.draining());
}

/// A session whose server shares `bytes` of memory for large buffers.
fn budget(bytes: usize) -> (SessionConfig, std::sync::Arc<MemoryBudget>) {
    let memory = MemoryBudget::new(bytes);
    let cfg = SessionConfig {
        memory: memory.clone(),
        ..config()
    };
    (cfg, memory)
}

#[test]
fn an_eager_put_the_memory_budget_cannot_hold_is_streamed_to_its_staging_file() {
    let data = vec![b'e'; 100];
    let mut put = b"put 100 new now f\ndata 100\n".to_vec();
    put.extend_from_slice(&data);
    put.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    // Room for it: held, then stored in one step.
    let (cfg, memory) = budget(100);
    let mut h = Harness::new(cfg);
    h.run();
    h.client(&put).run();
    assert_eq!(h.ops, ["store f 100"]);
    assert_eq!(memory.available(), 100, "given back once stored");
    // No room: begun first, written as it arrives, no `go`.
    let (cfg, memory) = budget(99);
    let mut h = Harness::new(cfg);
    h.run();
    h.client(&put).run();
    assert_eq!(h.ops, ["begin f 100", "commit"]);
    assert_eq!(h.replies(), format!("ok put 100 {}\n", Digest::of(&data)));
    assert_eq!(h.files["f"], data);
    // Refused by its checks: after its payload, whatever the trailer (PUT-9).
    let mut bad = put.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    h.client(&bad).run();
    assert!(h.replies().ends_with("err 512 exists\n"), "{}", h.replies());
    h.client(b"dir\n").run();
    assert!(
        h.replies()
            .ends_with("ok dir 1\n100 2024-03-01T08:00:00Z f\n")
    );
    assert_eq!(memory.available(), 99);
}

#[test]
fn a_get_uses_large_chunks_while_the_budget_lasts_and_gives_them_back() {
    let file = vec![b'g'; 3 << 20];
    let chunks = |h: &Harness, len: usize| {
        let head = format!("data {len}\n").into_bytes();
        h.sent.windows(head.len()).filter(|w| *w == head).count()
    };
    // A budget for one get's large buffers.
    let (cfg, memory) = budget(3 << 20);
    let mut h = Harness::new(cfg);
    h.files.insert("f".into(), file.clone());
    h.run();
    h.window = Some(100_000);
    h.client(b"get 0 f\n").run();
    assert!(memory.available() < 2 << 20, "taken while the get is sent");
    h.window = None;
    h.run();
    assert_eq!(chunks(&h, 1 << 20), 3);
    assert_eq!(memory.available(), 3 << 20, "given back after the payload");
    // Spent: 64 KiB chunks, the same octets.
    let (cfg, _memory) = budget(1 << 20);
    let mut h = Harness::new(cfg);
    h.files.insert("f".into(), file.clone());
    h.run();
    h.client(b"get 0 f\n").run();
    assert_eq!(chunks(&h, 1 << 20), 0);
    assert_eq!(chunks(&h, 64 << 10), 48);
    assert!(
        h.replies()
            .ends_with(&format!("end {}\n", Digest::of(&file)))
    );
}

#[test]
fn an_upload_reads_in_large_pieces_out_of_the_budget_and_gives_them_back_before_the_next_request() {
    let data = vec![b'u'; 300_000];
    let mut payload = format!("data {}\n", data.len()).into_bytes();
    payload.extend_from_slice(&data);
    payload.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    let (cfg, memory) = budget(usize::MAX / 2);
    let total = memory.available();
    let mut h = Harness::new(cfg);
    h.run();
    h.client(format!("put {} new wait f\n", data.len()).as_bytes())
        .run();
    h.client(&payload[..1000]).run();
    // 300,000 octets and a page, to the next power of two.
    assert_eq!(total - memory.available(), 512 << 10);
    h.client(&payload[1000..]).run();
    assert_eq!(h.files["f"], data);
    assert_eq!(memory.available(), total);
}

#[test]
fn a_listing_beyond_the_listing_budget_is_refused_with_431_and_the_budget_given_back() {
    let listing = MemoryBudget::new(200_000);
    let cfg = SessionConfig {
        listing_memory: listing.clone(),
        ..config()
    };
    let files: Vec<String> = (0..3000).map(|i| format!("file-{i:04}")).collect();
    // A client that reads nothing holds its listing (more than the session's output buffer),
    // and the budget, while it is sent.
    let mut a = Harness::new(cfg.clone());
    for f in &files {
        a.files.insert(f.clone(), Vec::new());
    }
    a.run();
    a.window = Some(0);
    a.client(b"dir\n").run();
    let held = 200_000 - listing.available();
    assert!(held > 100_000, "3,000 entries: {held}");
    // Another session's listing of as many entries does not fit: 431, a transient error.
    let mut b = Harness::new(cfg.clone());
    for f in &files {
        b.files.insert(f.clone(), Vec::new());
    }
    b.run();
    b.client(b"dir\n").run();
    assert_eq!(b.replies(), "err 431 storage\n");
    // Refused before the folder is listed: the size of the last listing is taken first.
    assert!(b.ops.is_empty(), "{:?}", b.ops);
    // Without that hint (the first listing of a server), the listing is collected, then
    // refused; the next is refused before it is collected.
    let mut d = Harness::new(SessionConfig {
        listing_memory: MemoryBudget::new(1000),
        ..config()
    });
    for f in &files {
        d.files.insert(f.clone(), Vec::new());
    }
    d.run();
    d.client(b"dir\ndir\n").run();
    assert_eq!(d.replies(), "err 431 storage\nerr 431 storage\n");
    assert_eq!(d.ops, ["list"]);
    // Once the first listing is sent, the budget is whole again.
    a.window = None;
    a.run();
    assert!(a.replies().starts_with("ok dir 3000\n"));
    assert!(a.replies().ends_with("file-2999\n"));
    assert_eq!(listing.available(), 200_000);
    // And a listing that fits is sent (the hint of the refused one is more than the budget,
    // so it is refused as a whole; a smaller folder fits again).
    let mut c = Harness::new(SessionConfig {
        listing_memory: MemoryBudget::new(1 << 20),
        ..config()
    });
    for f in &files {
        c.files.insert(f.clone(), Vec::new());
    }
    c.run();
    c.client(b"dir\n").run();
    assert!(c.replies().starts_with("ok dir 3000\n"));
}

/// The ops of a script, without those of puts (for the digest tests).
fn file_ops(h: &Harness) -> Vec<String> {
    h.ops
        .iter()
        .filter(|op| op.starts_with("open") || op.starts_with("remember") || op == &"close-file")
        .cloned()
        .collect()
}

/// #14 item 3: a get that hashed the whole file and found it unchanged asks to remember its
/// digest; a resumed get of a file whose digest is known reads only from its offset (one
/// octet for `get SIZE-1`, not the whole file) and its trailer carries the known digest.
/// On both driver paths.
#[test]
fn a_known_digest_makes_a_resumed_get_read_only_from_its_offset() {
    let size = 3_000_000usize;
    let big: Vec<u8> = (0..size as u32).map(|i| (i * 13 % 251) as u8).collect();
    for fast in [false, true] {
        let mut h = Harness::new(config());
        h.fast = fast;
        h.cache = true;
        h.files.insert("big".into(), big.clone());
        h.run();
        h.sent.clear();
        // The first get hashes everything (a resumed one: the prefix too) and remembers.
        h.client(format!("get {} big\n", size - 10).as_bytes())
            .run();
        assert_eq!(h.read_octets, size as u64, "fast={fast}");
        assert_eq!(file_ops(&h), ["open big", "remember-digest", "close-file"]);
        assert_eq!(h.digests.get("big"), Some(&Digest::of(&big)));
        let mut want = b"ok get 3000000 2024-03-01T08:00:00Z\ndata 10\n".to_vec();
        want.extend_from_slice(&big[size - 10..]);
        want.extend_from_slice(format!("end {}\n", Digest::of(&big)).as_bytes());
        assert!(h.sent == want, "fast={fast}");

        // The next reads one octet, and remembers nothing new.
        h.sent.clear();
        h.ops.clear();
        h.read_octets = 0;
        h.client(format!("get {} big\n", size - 1).as_bytes()).run();
        assert_eq!(h.read_octets, 1, "fast={fast}");
        assert_eq!(file_ops(&h), ["open big", "close-file"]);
        let mut want = b"ok get 3000000 2024-03-01T08:00:00Z\ndata 1\n".to_vec();
        want.push(big[size - 1]);
        want.extend_from_slice(format!("end {}\n", Digest::of(&big)).as_bytes());
        assert!(h.sent == want, "fast={fast}: {:?}", h.text());

        // The trailer is the known digest, not a hash of what was read: the session trusts
        // the driver's cache (which is why the cache is keyed to the file's identity).
        let planted = Digest::from_bytes([7; 16]);
        h.digests.insert("big".into(), planted);
        h.sent.clear();
        h.read_octets = 0;
        h.client(format!("get {size} big\nget 2000000 big\n").as_bytes())
            .run();
        assert_eq!(h.read_octets, 1_000_000, "fast={fast}");
        let text = h.text();
        assert!(
            text.starts_with(&format!(
                "ok get 3000000 2024-03-01T08:00:00Z\nend {planted}\nok get 3000000"
            )),
            "{}",
            &text[..120]
        );
        assert!(text.ends_with(&format!("end {planted}\n")));
    }
}

/// A file without a known digest (never hashed whole, or changed since: the driver's cache
/// is keyed to the file's identity and hands nothing over) is read and hashed whole again; a
/// get whose file changed during the get (GET-9) or failed to read remembers nothing.
#[test]
fn a_changed_file_is_hashed_again_and_a_failed_get_remembers_nothing() {
    let size = 2_000_000usize;
    let old = vec![1u8; size];
    let new = vec![2u8; size];
    let mut h = Harness::new(config());
    h.cache = true;
    h.files.insert("f".into(), old.clone());
    h.run();
    h.client(b"get 0 f\n").run();
    assert_eq!(h.digests.get("f"), Some(&Digest::of(&old)));

    // Replaced under its name (as a put does): the cache has nothing for the new file.
    h.files.insert("f".into(), new.clone());
    h.digests.clear();
    h.sent.clear();
    h.read_octets = 0;
    h.client(format!("get {} f\n", size - 1).as_bytes()).run();
    assert_eq!(h.read_octets, size as u64);
    assert!(
        h.text()
            .ends_with(&format!("\x02end {}\n", Digest::of(&new)))
    );
    assert_eq!(h.digests.get("f"), Some(&Digest::of(&new)));

    // Changed during the get: abort 430, nothing remembered.
    h.digests.clear();
    h.changed = true;
    h.ops.clear();
    h.sent.clear();
    h.client(b"get 0 f\n").run();
    assert!(
        h.text().ends_with("abort 430 changed\n"),
        "{:?}",
        &h.text()[..40]
    );
    assert_eq!(file_ops(&h), ["open f", "close-file"]);
    assert!(h.digests.is_empty());

    // A read failure: abort 431, nothing remembered.
    h.changed = false;
    h.ops.clear();
    h.faults = vec![Code::STORAGE];
    h.client(b"get 0 f\n").run();
    assert_eq!(file_ops(&h), ["open f", "close-file"]);
    assert!(h.digests.is_empty());

    // A known digest with a file that changes during the get: GET-9 holds as before.
    h.digests.insert("f".into(), Digest::of(&new));
    h.changed = true;
    h.sent.clear();
    h.client(format!("get {} f\n", size - 1).as_bytes()).run();
    assert!(h.text().ends_with("abort 430 changed\n"), "{:?}", h.text());
}

/// With [`ServerSession::send_files`], a get whose digest is known has its chunk data sent
/// straight from the file ([`Action::SendFile`]: `sendfile` in the threaded driver), nothing
/// read into the session: the same octets as a get that reads and hashes.
#[test]
fn a_known_digest_lets_the_driver_send_chunks_straight_from_the_file() {
    let size = 3_000_000usize;
    let big: Vec<u8> = (0..size as u32).map(|i| (i * 17 % 251) as u8).collect();
    let script = |h: &mut Harness| {
        h.files.insert("big".into(), big.clone());
        h.run();
        h.client(b"get 0 big\n").run();
        h.client(b"get 100 big\nget 2999999 big\nget 3000000 big\ndir\n")
            .run();
    };
    let mut plain = Harness::new(config());
    script(&mut plain);
    for fast in [false, true] {
        let mut h = Harness::new(config());
        h.fast = fast;
        h.cache = true;
        h.send_files = true;
        script(&mut h);
        // The first get hashed the file (read it all); the others read nothing.
        assert_eq!(h.read_octets, size as u64, "fast={fast}");
        assert_eq!(h.file_sent, (size - 100 + 1) as u64, "fast={fast}");
        assert!(h.sent == plain.sent, "fast={fast}: the octets differ");
    }
}

/// A file that ends (or fails to read) while a chunk is sent straight from it: the chunk is
/// completed with zeros (its length was announced, DATA-11), the payload ends with
/// `abort 430` (GET-9) or `abort 431` (GET-10), and the session goes on.
#[test]
fn a_file_that_ends_during_a_chunk_sent_from_the_file_ends_with_abort() {
    let size = 2_000_000usize;
    let data: Vec<u8> = (0..size as u32).map(|i| (i % 249) as u8).collect();
    for (code, text) in [
        (Code::CHANGED, "abort 430 changed\n"),
        (Code::STORAGE, "abort 431 storage\n"),
    ] {
        let mut h = Harness::new(config());
        h.cache = true;
        h.send_files = true;
        h.files.insert("f".into(), data.clone());
        h.run();
        h.client(b"get 0 f\n").run();
        h.sent.clear();
        let head = "ok get 2000000 2024-03-01T08:00:00Z\ndata 1048576\n";
        h.window = Some(head.len() + 1000);
        h.client(b"get 0 f\n").run();
        assert!(
            matches!(h.waiting, Some(Action::SendFile { at: 1000, .. })),
            "{:?}",
            h.waiting
        );
        if code == Code::CHANGED {
            // Truncated to 1500 octets under the session.
            h.open.as_mut().expect("open").1.truncate(1500);
        } else {
            h.faults = vec![Code::STORAGE];
        }
        h.window = None;
        h.client(b"dir\n").run();
        let sent_data = if code == Code::CHANGED { 1500 } else { 1000 };
        let mut want = head.as_bytes().to_vec();
        want.extend_from_slice(&data[..sent_data]);
        want.resize(head.len() + 1_048_576, 0);
        want.extend_from_slice(text.as_bytes());
        want.extend_from_slice(b"ok dir 1\n");
        assert!(
            h.sent.starts_with(&want),
            "{code}: {:?}",
            String::from_utf8_lossy(&h.sent[h.sent.len().saturating_sub(60)..])
        );
    }
}

/// A client that stops reading during a chunk sent from the file is dropped after the
/// stall timeout, as during any other send.
#[test]
fn a_client_that_stops_reading_during_a_chunk_sent_from_the_file_is_dropped() {
    let mut h = Harness::new(config());
    h.cache = true;
    h.send_files = true;
    h.files.insert("f".into(), vec![5u8; 2_000_000]);
    h.run();
    h.client(b"get 0 f\n").run();
    h.window = Some(100);
    h.client(b"get 0 f\n").run();
    assert!(
        matches!(h.waiting, Some(Action::SendFile { .. })),
        "{:?}",
        h.waiting
    );
    h.wait(Duration::from_secs(59));
    assert_eq!(h.finished(), None);
    h.wait(Duration::from_secs(1));
    assert_eq!(h.finished(), Some(End::Dropped("peer accepts no output")));
}
