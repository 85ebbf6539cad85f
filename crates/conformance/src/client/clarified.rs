//! Client cases for rules the specification clarified (see the README's "Rules clarified"):
//! a greeting that lists a version twice (HELLO-9), MTIMEs that are no valid date (DIR-9),
//! listings out of order or with a name twice (DIR-10), listing entries whose names the
//! client cannot accept (NAME-14), partial octets after `abort 430` (GET-13) and the new
//! permanent code 516.

use ferry_wire::Digest;

use super::cases::{failed, get_mock, listing, ok_only, succeeded};
use super::{After, Answer, ClientCase, GREETING, Mock, Op, Outcome, tree};
use crate::case::{Done, Res, ensure, violation};

const MTIME: &str = "2024-03-01T08:00:00Z";

/// The content a get answers with: 3000 octets including LF, CR, NUL and non-UTF-8.
fn content() -> Vec<u8> {
    (0..3000u32).map(|i| ((i * 17 + 3) % 251) as u8).collect()
}

fn dir_mock(bytes: Vec<u8>, then: After) -> Mock {
    Mock {
        dir: Answer { bytes, then },
        ..Mock::default()
    }
}

/// `ok get` for `data` with MTIME `mtime`, in chunks of 1000.
fn get_reply(data: &[u8], mtime: &str) -> Vec<u8> {
    let mut out = format!("ok get {} {mtime}\n", data.len()).into_bytes();
    for c in data.chunks(1000) {
        out.extend_from_slice(format!("data {}\n", c.len()).as_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(format!("end {}\n", Digest::of(data)).as_bytes());
    out
}

// ------------------------------------------------------------------- judges ---

/// Nothing but `{dir}` and what is inside it exists in the work folder.
fn nothing_outside(o: &Outcome) -> Res<()> {
    let t = tree(&o.work);
    let outside: Vec<&String> = t
        .iter()
        .filter(|p| !(p.as_str() == "d/" || p.starts_with("d/")))
        .collect();
    ensure(
        outside.is_empty(),
        "NAME-10",
        "no file created outside {dir}",
        || format!("created {outside:?}"),
    )
}

/// The get failed and left no `{dir}/{name}`.
fn failed_no_file(o: &Outcome, req: &str) -> Res<Done> {
    failed(o, req)?;
    let f = o.target_file();
    ensure(
        !f.exists(),
        req,
        format!("no file {{dir}}/{} (nothing presented as complete)", o.name),
        || "it exists".to_owned(),
    )?;
    nothing_outside(o)?;
    Ok(Done::Pass)
}

/// The operation failed and created nothing anywhere.
fn failed_nothing_created(o: &Outcome, req: &str) -> Res<Done> {
    let t = tree(&o.work);
    ensure(t == ["d/"], req, "no file created anywhere", || {
        format!("files now: {t:?}")
    })?;
    failed(o, req)?;
    Ok(Done::Pass)
}

/// The listing succeeded and created nothing anywhere.
fn ok_nothing_created(o: &Outcome, req: &str) -> Res<Done> {
    let t = tree(&o.work);
    ensure(t == ["d/"], req, "no file created anywhere", || {
        format!("files now: {t:?}")
    })?;
    succeeded(o, req)?;
    Ok(Done::Pass)
}

/// The get failed, and no file under `{dir}` holds the octets received before the abort.
fn failed_nothing_kept(o: &Outcome, req: &str) -> Res<Done> {
    failed_no_file(o, "GET-11")?;
    let sent = &content()[..1000];
    for rel in tree(&o.dir) {
        let p = o.dir.join(&rel);
        let Ok(data) = std::fs::read(&p) else {
            continue;
        };
        let kept = !data.is_empty() && data.windows(100).any(|w| w == &sent[..100]);
        if kept {
            return Err(violation(
                req,
                "the octets received before `abort 430` discarded, not kept as a partial file",
                format!("{{dir}}/{rel} holds them ({} octets)", data.len()),
            ));
        }
    }
    Ok(Done::Pass)
}

// --------------------------------------------------------------------- cases ---

pub(crate) fn all() -> Vec<ClientCase> {
    let c = content();
    let mut abort_430 = format!("ok get 3000 {MTIME}\ndata 1000\n").into_bytes();
    abort_430.extend_from_slice(&c[..1000]);
    abort_430.extend_from_slice(b"abort 430 changed\n");
    let mut abort_422 = format!("ok get 3000 {MTIME}\ndata 1000\n").into_bytes();
    abort_422.extend_from_slice(&c[..1000]);
    abort_422.extend_from_slice(b"abort 422 shutting-down\n");
    let k_16d67 = "k\u{16d67}\u{16d67}".as_bytes();
    let unassigned = "q\u{378}.txt".as_bytes();
    vec![
        ClientCase::new(
            "HELLO-9/6",
            "a greeting listing version 1 twice: failure, nothing sent",
            &["HELLO-9", "HELLO-4"],
            Op::Get,
            Mock {
                greeting: GREETING.replace("ferry/1 ", "ferry/1,1 ").into_bytes(),
                after_greeting: After::Hold,
                ..Mock::default()
            },
            failed_no_file,
        ),
        ClientCase::new(
            "HELLO-9/7",
            "a greeting listing version 1 twice among others: failure, nothing sent",
            &["HELLO-9", "HELLO-4"],
            Op::Dir,
            Mock {
                greeting: GREETING.replace("ferry/1 ", "ferry/1,2,1 ").into_bytes(),
                after_greeting: After::Hold,
                ..Mock::default()
            },
            failed_nothing_created,
        ),
        ClientCase::new(
            "DIR-9/1",
            "`ok get` with MTIME 2023-02-30T00:00:00Z: failure, no file",
            &["DIR-9", "ERR-10"],
            Op::Get,
            get_mock(get_reply(&c, "2023-02-30T00:00:00Z"), After::Hold),
            failed_no_file,
        ),
        ClientCase::new(
            "DIR-9/2",
            "`ok get` with second 60: failure, no file",
            &["DIR-9", "ERR-10"],
            Op::Get,
            get_mock(get_reply(&c, "2016-12-31T23:59:60Z"), After::Hold),
            failed_no_file,
        ),
        ClientCase::new(
            "DIR-9/3",
            "dir: an entry with MTIME 2023-02-29T12:00:00Z: failure",
            &["DIR-9", "ERR-10"],
            Op::Dir,
            dir_mock(
                format!("ok dir 2\n5 {MTIME} a.txt\n5 2023-02-29T12:00:00Z b.txt\n").into_bytes(),
                After::Hold,
            ),
            failed_nothing_created,
        ),
        ClientCase::new(
            "DIR-9/4",
            "dir: MTIMEs of years 0000 and 9999 are accepted",
            &["DIR-9"],
            Op::Dir,
            dir_mock(
                b"ok dir 2\n5 0000-01-01T00:00:00Z a.txt\n5 9999-12-31T23:59:59Z b.txt\n".to_vec(),
                After::Continue,
            ),
            ok_only,
        ),
        ClientCase::new(
            "DIR-10/1",
            "dir: entries out of bytewise order: failure",
            &["DIR-10", "DIR-4", "ERR-10"],
            Op::Dir,
            dir_mock(listing(&[b"b.txt", b"a.txt"]), After::Hold),
            failed_nothing_created,
        ),
        ClientCase::new(
            "DIR-10/2",
            "dir: a name listed twice: failure",
            &["DIR-10", "DIR-4", "ERR-10"],
            Op::Dir,
            dir_mock(listing(&[b"a.txt", b"a.txt"]), After::Hold),
            failed_nothing_created,
        ),
        ClientCase::new(
            "DIR-10/3",
            "dir: a skipped name out of order still makes the listing invalid",
            &["DIR-10", "NAME-14", "ERR-10"],
            Op::Dir,
            dir_mock(listing(&[b"a.txt", b"z.txt", k_16d67]), After::Hold),
            failed_nothing_created,
        ),
        ClientCase::new(
            "NAME-14/1",
            "dir: k + U+16D67 U+16D67 (not NFC under Unicode 18.0.0) between two valid names: skipped, success",
            &["NAME-14", "NAME-9", "NAME-5"],
            Op::Dir,
            dir_mock(listing(&[b"a.txt", k_16d67, b"z.txt"]), After::Continue),
            ok_nothing_created,
        ),
        ClientCase::new(
            "NAME-14/2",
            "dir: a name with U+0378 (unassigned) between two valid names: skipped, success",
            &["NAME-14", "NAME-13"],
            Op::Dir,
            dir_mock(listing(&[b"a.txt", unassigned, b"z.txt"]), After::Continue),
            ok_nothing_created,
        ),
        ClientCase::new(
            "NAME-14/3",
            "dir: names `../x`, `.hidden`, `a/b`, not UTF-8 among valid ones: skipped, nothing created, success",
            &["NAME-14", "NAME-9", "NAME-10"],
            Op::Dir,
            dir_mock(
                listing(&[
                    b"../x",
                    b".hidden",
                    b"a.txt",
                    b"a/b",
                    b"caf\xe9.txt",
                    b"z.txt",
                ]),
                After::Continue,
            ),
            ok_nothing_created,
        ),
        ClientCase::new(
            "GET-13/1",
            "get: abort 430 after 1000 octets: failure, the octets not kept",
            &["GET-13", "DATA-9", "GET-11"],
            Op::Get,
            get_mock(abort_430, After::Continue),
            failed_nothing_kept,
        ),
        ClientCase::new(
            "GET-12/1",
            "get: abort 422 after 1000 octets, then close: failure, no complete file",
            &["GET-11", "GET-12", "DATA-9"],
            Op::Get,
            get_mock(abort_422, After::Close),
            failed_no_file,
        ),
        ClientCase::new(
            "ERR-3/2",
            "`err 516 denied` (permanent): failure, no file",
            &["ERR-3"],
            Op::Get,
            get_mock(b"err 516 denied\n".to_vec(), After::Continue),
            failed_no_file,
        ),
    ]
}
