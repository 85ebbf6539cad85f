//! The `tree` extension in the server session (spec section 17), in memory: the offer and
//! `enable tree` (TREE-1, TREE-2, EXT-4), paths in `get`/`put` only once enabled (TREE-5),
//! the checks that need no storage (rights TREE-13, read-only, a rename into itself TREE-11),
//! pipelined requests answered in order (PIPE-1), the listing budget (DIR-11) and the audit.
//! What the storage does is the harness's fake folder here; ferry-store's is tested in
//! crates/store and against every server in tests/servers.

use std::sync::Arc;

use ferry_proto::audit::{self, Operation, Outcome};
use ferry_proto::auth::{Authenticator, Grant, Mechanism, Right, Rights, ScramServer, UserName};
use ferry_proto::memory::Harness;
use ferry_proto::server::{MemoryBudget, SessionConfig};
use ferry_wire::{Code, Digest};

const GREETING: &[u8] = b"ferry/1 max-line=4096 max-name=255 max-size=1000000 max-chunk=1048576 ext=tree max-eager=100 idle=300 stall=60\n";

const MTIME: &str = "2024-03-01T08:00:00Z";

fn config(tree: bool) -> SessionConfig {
    SessionConfig {
        tree,
        ..ferry_proto::memory::test_config(GREETING)
    }
}

fn session(cfg: SessionConfig) -> Harness {
    let mut h = Harness::new(cfg);
    h.run();
    assert_eq!(out(&mut h).as_bytes(), GREETING);
    h
}

/// What the session sent since the last call.
fn out(h: &mut Harness) -> String {
    String::from_utf8_lossy(&std::mem::take(&mut h.sent)).into_owned()
}

fn eager_put(name: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!("put {} new now {name}\ndata {}\n", data.len(), data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(format!("end {}\n", Digest::of(data)).as_bytes());
    v
}

/// The extension's requests, one of each, with the right each needs (TREE-13's table).
const REQUESTS: [(&str, Right); 5] = [
    ("list - .\n", Right::List),
    ("mkdir n\n", Right::Create),
    ("rmdir d\n", Right::Delete),
    ("delete f\n", Right::Delete),
    ("rename 1 f g\n", Right::Rename),
];

#[test]
fn without_the_offer_every_request_of_the_extension_is_503_and_paths_stay_510() {
    let mut h = session(config(false));
    h.files.insert("f".into(), b"x".to_vec());
    h.client(b"enable tree\nlist - .\nmkdir a\nrmdir a\ndelete f\nrename 1 f g\n")
        .client(b"list\nenable\nget 0 a/b\nlistx\n")
        .run();
    assert_eq!(
        out(&mut h),
        "err 503 unsupported\n".repeat(8) + "err 510 bad-name\nerr 500 syntax\n"
    );
    assert!(h.ops.is_empty(), "storage untouched: {:?}", h.ops);
    assert!(h.files.contains_key("f"));
}

#[test]
fn enable_tree_is_ok_each_time_and_anything_else_to_enable_is_503() {
    let mut h = session(config(true));
    h.client(b"enable tree\nenable tree\nenable auth\nenable x-zip\n")
        .run();
    assert_eq!(
        out(&mut h),
        "ok enable tree\nok enable tree\nerr 503 unsupported\nerr 503 unsupported\n"
    );
}

#[test]
fn paths_in_get_and_put_only_after_enable() {
    let mut h = session(config(true));
    h.folders.insert("a".into());
    h.files.insert("a/b".into(), b"hello".to_vec());
    // TREE-2: before `ok enable tree`, a `/` in a name is 510, an eager put's payload read
    // past first (PUT-9); the extension's other requests work already.
    h.client(b"get 0 a/b\nput 3 new wait a/c\n")
        .client(&eager_put("a/c", b"abc"))
        .client(b"list - a\n")
        .run();
    assert_eq!(
        out(&mut h),
        format!(
            "err 510 bad-name\nerr 510 bad-name\nerr 510 bad-name\nok list 1\nf 5 {MTIME} - b\n"
        )
    );
    assert!(!h.files.contains_key("a/c"));
    h.client(b"enable tree\nget 0 a/b\n").run();
    let digest = Digest::of(b"hello");
    assert_eq!(
        out(&mut h),
        format!("ok enable tree\nok get 5 {MTIME}\ndata 5\nhelloend {digest}\n")
    );
    // Pipelined eager puts with paths are stored in one step, as names are.
    let steps = h.store_steps;
    let mut puts = eager_put("a/x", b"xx");
    puts.extend(eager_put("a/y", b"yyy"));
    puts.extend(eager_put("top", b"t"));
    h.client(&puts).run();
    assert_eq!(
        out(&mut h),
        format!(
            "ok put 2 {}\nok put 3 {}\nok put 1 {}\n",
            Digest::of(b"xx"),
            Digest::of(b"yyy"),
            Digest::of(b"t")
        )
    );
    assert_eq!(h.store_steps, steps + 1, "{:?}", h.ops);
    assert_eq!(h.files.get("a/y").map(Vec::as_slice), Some(&b"yyy"[..]));
    // TREE-5: the folder must exist (the storage's 511); a bad path is 510.
    h.client(b"put 1 new wait nope/f\nget 0 a/../b\nget 0 a//b\n")
        .run();
    assert_eq!(
        out(&mut h),
        "err 511 not-found\nerr 510 bad-name\nerr 510 bad-name\n"
    );
}

#[test]
fn each_request_reaches_the_storage_and_answers_its_result() {
    let mut h = session(config(true));
    h.files.insert("f".into(), b"12345".to_vec());
    h.client(b"mkdir d\nmkdir d\nmkdir x/y\nmkdir f\n")
        .client(b"rename 1 f d/f\nrmdir d\nrmdir d/f\ndelete d\nlist - d/f\n")
        .client(b"delete d/f\ndelete d/f\nrmdir d\nrmdir d\nrename 1 d e\n")
        .run();
    assert_eq!(
        out(&mut h),
        "ok mkdir\nerr 512 exists\nerr 511 not-found\nerr 512 exists\n\
         ok rename\nerr 517 not-empty\nerr 518 wrong-kind\nerr 518 wrong-kind\nerr 518 wrong-kind\n\
         ok delete\nerr 511 not-found\nok rmdir\nerr 511 not-found\nerr 511 not-found\n"
    );
    assert!(h.files.is_empty() && h.folders.is_empty());
    assert_eq!(h.ops[0], "mkdir d");
    // A storage failure is answered as it comes.
    h.faults.push(Code::STORAGE);
    h.client(b"mkdir z\n").run();
    assert_eq!(out(&mut h), "err 431 storage\n");
}

#[test]
fn a_listing_is_sorted_with_digests_and_paths_relative_to_its_folder() {
    let mut h = session(config(true));
    for f in ["d", "d/e", "d-"] {
        h.folders.insert(f.into());
    }
    for (f, data) in [("d/e/f", &b"one"[..]), ("d/a", b"two!"), ("z", b"")] {
        h.files.insert(f.into(), data.to_vec());
    }
    h.client(b"list digests,recursive .\nlist - d\nlist recursive d\nlist - nope\n")
        .run();
    let (one, two, empty) = (Digest::of(b"one"), Digest::of(b"two!"), Digest::of(b""));
    assert_eq!(
        out(&mut h),
        format!(
            "ok list 6\n\
             d - {MTIME} - d\n\
             d - {MTIME} - d-\n\
             f 4 {MTIME} {two} d/a\n\
             d - {MTIME} - d/e\n\
             f 3 {MTIME} {one} d/e/f\n\
             f 0 {MTIME} {empty} z\n\
             ok list 2\nf 4 {MTIME} - a\nd - {MTIME} - e\n\
             ok list 3\nf 4 {MTIME} - a\nd - {MTIME} - e\nf 3 {MTIME} - e/f\n\
             err 511 not-found\n"
        )
    );
}

#[test]
fn rename_to_itself_or_into_itself_is_510_before_storage() {
    let mut h = session(config(true));
    h.folders.insert("a".into());
    h.client(b"rename 1 a a\nrename 1 a a/b\nrename 3 a/b a/b/c\nrename 1 a ab\n")
        .run();
    assert_eq!(
        out(&mut h),
        "err 510 bad-name\nerr 510 bad-name\nerr 510 bad-name\nok rename\n"
    );
    assert_eq!(h.ops, ["rename a ab"]);
    // TREE-11: LEN that does not end at a SP is 500.
    h.client(b"rename 3 ab c\nrename 9 ab c\n").run();
    assert_eq!(out(&mut h), "err 500 syntax\nerr 500 syntax\n");
}

#[test]
fn a_read_only_server_answers_514_to_changes_after_the_path_checks() {
    let mut h = session(SessionConfig {
        read_only: true,
        ..config(true)
    });
    h.folders.insert("d".into());
    h.files.insert("f".into(), b"x".to_vec());
    h.client(b"mkdir n\nrmdir d\ndelete f\nrename 1 f g\n")
        .client(b"mkdir a/./b\nrename 1 f f\nlist - .\n")
        .run();
    assert_eq!(
        out(&mut h),
        format!(
            "{}err 510 bad-name\nerr 510 bad-name\nok list 2\nd - {MTIME} - d\nf 1 {MTIME} - f\n",
            "err 514 read-only\n".repeat(4)
        )
    );
    assert_eq!(h.ops, ["list ."]);
}

/// An authenticator whose anonymous access has `anonymous`'s rights (`None`: none, 530).
#[derive(Debug)]
struct Anonymous(Option<Rights>);

impl Authenticator for Anonymous {
    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL.to_vec()
    }
    fn anonymous(&self) -> Option<Rights> {
        self.0
    }
    fn ed25519(&self, _: &UserName, _: &[u8; 32], _: &[u8; 64], _: &[u8; 32]) -> Option<Grant> {
        None
    }
    fn scram_start(
        &self,
        _: &[u8],
        _: Option<&[u8; 32]>,
    ) -> Option<(Box<dyn ScramServer>, Vec<u8>)> {
        None
    }
}

fn with_users(anonymous: Option<Rights>) -> Harness {
    let mut h = session(SessionConfig {
        auth: Some(Arc::new(Anonymous(anonymous)) as Arc<dyn Authenticator>),
        ..config(true)
    });
    h.folders.insert("d".into());
    h.files.insert("f".into(), b"x".to_vec());
    h
}

#[test]
fn each_request_needs_its_right_530_before_authentication_550_without_it() {
    let mut h = with_users(None);
    for (request, _) in REQUESTS {
        h.client(request.as_bytes());
    }
    // `enable` needs no right.
    h.client(b"enable tree\n").run();
    assert_eq!(
        out(&mut h),
        "err 530 auth-required\n".repeat(5) + "ok enable tree\n"
    );
    assert!(h.ops.is_empty(), "{:?}", h.ops);
    for (request, right) in REQUESTS {
        let mut all_but = Rights::NONE;
        for r in Right::ALL.into_iter().filter(|&r| r != right) {
            all_but.insert(r);
        }
        let mut h = with_users(Some(all_but));
        h.client(request.as_bytes()).run();
        assert_eq!(out(&mut h), "err 550 not-permitted\n", "{request:?}");
        assert!(h.ops.is_empty(), "{request:?}: {:?}", h.ops);
        let mut only = Rights::NONE;
        only.insert(right);
        let mut h = with_users(Some(only));
        h.client(request.as_bytes()).run();
        assert!(out(&mut h).starts_with("ok "), "{request:?}");
    }
    // The rights come before the path's checks that need no storage (TREE-13).
    let mut h = with_users(Some(Rights::READ_ONLY));
    h.client(b"rename 1 d d/e\n").run();
    assert_eq!(out(&mut h), "err 550 not-permitted\n");
}

#[test]
fn pipelined_requests_of_both_kinds_are_answered_in_order() {
    let mut h = session(config(true));
    let data = b"hello";
    let digest = Digest::of(data);
    let mut script = b"enable tree\nmkdir d\n".to_vec();
    script.extend(eager_put("d/f", data));
    script.extend_from_slice(b"list digests,recursive .\nget 3 d/f\nrename 1 d e\ndir\n");
    script.extend_from_slice(b"delete e/f\nrmdir e\nversion 1\nlist - .\nclose\n");
    h.client(&script).run();
    assert_eq!(
        out(&mut h),
        format!(
            "ok enable tree\nok mkdir\nok put 5 {digest}\n\
             ok list 2\nd - {MTIME} - d\nf 5 {MTIME} {digest} d/f\n\
             ok get 5 {MTIME}\ndata 2\nloend {digest}\n\
             ok rename\nok dir 0\nok delete\nok rmdir\nerr 500 syntax\nok list 0\nbye\n"
        )
    );
}

#[test]
fn a_listing_beyond_the_listing_budget_is_431_and_gives_its_memory_back() {
    let budget = MemoryBudget::new(2000);
    let mut h = session(SessionConfig {
        listing_memory: Arc::clone(&budget),
        ..config(true)
    });
    for i in 0..100 {
        h.files.insert(format!("file-{i:03}"), Vec::new());
    }
    h.client(b"list - .\n").run();
    assert_eq!(out(&mut h), "err 431 storage\n");
    assert_eq!(budget.available(), 2000);
    for i in 10..100 {
        h.files.remove(&format!("file-{i:03}"));
    }
    h.client(b"list - .\ndir\n").run();
    let text = out(&mut h);
    assert!(text.starts_with("ok list 10\n"), "{text}");
    assert!(text.contains("ok dir 10\n"), "{text}");
    assert_eq!(budget.available(), 2000, "every listing's memory came back");
}

#[test]
fn every_request_is_audited_with_its_path_and_a_rename_with_where_to() {
    let mut h = Harness::new(config(true));
    let sink = audit::Memory::new();
    h.s.set_audit(Arc::clone(&sink) as Arc<dyn audit::Audit>);
    h.folders.insert("d".into());
    h.files.insert("d/f".into(), b"abc".to_vec());
    h.client(b"enable tree\nlist recursive .\nmkdir d/e\nrename 3 d/e d/g\n")
        .client(b"rmdir d/g\ndelete d/f\ndelete d/f\nrename 1 d d/x\nget 0 d/nope\n")
        .run();
    let records = sink.take();
    let got: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.operation,
                r.name.as_deref(),
                r.to.as_deref(),
                r.entries,
                r.outcome,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Operation::List, Some("."), None, Some(2), Outcome::Ok),
            (Operation::Mkdir, Some("d/e"), None, None, Outcome::Ok),
            (
                Operation::Rename,
                Some("d/e"),
                Some("d/g"),
                None,
                Outcome::Ok
            ),
            (Operation::Rmdir, Some("d/g"), None, None, Outcome::Ok),
            (Operation::Delete, Some("d/f"), None, None, Outcome::Ok),
            (
                Operation::Delete,
                Some("d/f"),
                None,
                None,
                Outcome::Err(Code::NOT_FOUND)
            ),
            (
                Operation::Rename,
                Some("d"),
                Some("d/x"),
                None,
                Outcome::Err(Code::BAD_NAME)
            ),
            (
                Operation::Get,
                Some("d/nope"),
                None,
                None,
                Outcome::Err(Code::NOT_FOUND)
            ),
        ]
    );
    assert!(records.iter().all(|r| r.bytes == 0 && r.user.is_none()));
    assert_eq!(audit::code_name(ferry_wire::tree::NOT_EMPTY), "not-empty");
}

#[test]
fn after_enable_bad_lines_are_answered_as_ferry_1_answers_them() {
    let mut h = session(config(true));
    h.folders.insert("a".into());
    // An eager put with a bad path: its payload is read past, then 510 (PUT-9); the session
    // stays in step.
    let mut script = b"enable tree\n".to_vec();
    script.extend(eager_put("a/../b", b"xyz"));
    script.extend_from_slice(b"list\nlist digests,digests .\nmkdir\nget 0 a/\n");
    h.client(&script).run();
    assert_eq!(
        out(&mut h),
        "ok enable tree\nerr 510 bad-name\nerr 500 syntax\nerr 500 syntax\nerr 500 syntax\nerr 510 bad-name\n"
    );
    assert!(h.ops.is_empty(), "{:?}", h.ops);
    // A put line that does not parse up to its path: 502, and the session closes (ERR-6).
    h.client(b"put x new wait a/b\n").run();
    assert_eq!(out(&mut h), "err 502 protocol\n");
    assert!(h.draining(), "{:?}", h.waiting);
}

/// What the session logs while `run` runs (the global subscriber writes to a thread-local
/// buffer, as crates/proto/tests/server.rs's `logged`).
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
    LOG.with(|l| String::from_utf8_lossy(&l.borrow()).into_owned())
}

#[test]
fn a_rename_is_logged_with_where_to_and_a_listing_with_its_folder() {
    let mut h = session(config(true));
    h.folders.insert("d".into());
    let log = logged(|| {
        h.client(b"rename 1 d e\nrename 1 e e/f\ndelete e\nlist - e\n")
            .run();
    });
    assert_eq!(
        out(&mut h),
        "ok rename\nerr 510 bad-name\nerr 518 wrong-kind\nok list 0\n"
    );
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("request")).collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(
        lines[0].contains("command=\"rename\" name=\"d\" to=\"e\""),
        "{log}"
    );
    assert!(
        lines[1].contains("name=\"e\" to=\"e/f\"") && lines[1].contains("code=510"),
        "{log}"
    );
    assert!(
        lines[2].contains("command=\"delete\"") && !lines[2].contains("to="),
        "{log}"
    );
    assert!(lines[3].contains("folder=\"e\" entries=0"), "{log}");
}
