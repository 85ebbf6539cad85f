//! The client cases: scripted servers, correct and hostile, and how each run is judged.

use std::path::Path;
use std::time::Duration;

use ferry_wire::Digest;

use super::{After, Answer, ClientCase, GREETING, Mock, Op, Outcome, PutAnswer, file_digest, tree};
use crate::case::{Done, Res, ensure, violation};
use crate::net::{Trailer, show};

const MTIME: &str = "2024-03-01T08:00:00Z";

/// The content of a downloaded file: 3000 octets including LF, CR, NUL and non-UTF-8.
fn content() -> Vec<u8> {
    (0..3000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

/// `ok get` and the payload of `data` in chunks of `chunk` octets, LF line ends.
fn get_reply(data: &[u8], chunk: usize) -> Vec<u8> {
    get_reply_with(data, chunk, Digest::of(data), "\n")
}

fn get_reply_with(data: &[u8], chunk: usize, digest: Digest, eol: &str) -> Vec<u8> {
    let mut out = format!("ok get {} {MTIME}{eol}", data.len()).into_bytes();
    for c in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("data {}{eol}", c.len()).as_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(format!("end {digest}{eol}").as_bytes());
    out
}

fn get_mock(bytes: Vec<u8>, then: After) -> Mock {
    Mock {
        get: Answer { bytes, then },
        ..Mock::default()
    }
}

fn greeting_eager(max_eager: u64) -> Vec<u8> {
    GREETING
        .replace("max-eager=1048576", &format!("max-eager={max_eager}"))
        .into_bytes()
}

fn listing(names: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("ok dir {}\n", names.len()).into_bytes();
    for n in names {
        out.extend_from_slice(format!("5 {MTIME} ").as_bytes());
        out.extend_from_slice(n);
        out.push(b'\n');
    }
    out
}

// ------------------------------------------------------------------- judges ---

fn succeeded(o: &Outcome, req: &str) -> Res<()> {
    ensure(
        o.code == Some(0),
        req,
        "exit status 0 (the operation succeeded)",
        || o.status(),
    )
}

fn failed(o: &Outcome, req: &str) -> Res<()> {
    ensure(
        o.code != Some(0),
        req,
        "a non-zero exit status (the operation must fail)",
        || "exit status 0 (reported as success)",
    )
}

/// Nothing but `{dir}` and what the case put there exists in the work folder.
fn nothing_outside(o: &Outcome, req: &str) -> Res<()> {
    let t = tree(&o.work);
    let outside: Vec<&String> = t
        .iter()
        .filter(|p| !(p.as_str() == "d/" || p.starts_with("d/") || p.starts_with("keep")))
        .collect();
    ensure(
        outside.is_empty(),
        req,
        "no file created outside {dir}",
        || format!("created {outside:?}"),
    )
}

fn ok_get(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let got = std::fs::read(o.target_file()).map_err(|e| {
        violation(
            req,
            format!("{{dir}}/{} with the file's content", o.name),
            format!("cannot read it: {e}"),
        )
    })?;
    ensure(
        got == content(),
        req,
        "the 3000 octets the server sent",
        || format!("{} octets that differ", got.len()),
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

fn ok_get_empty(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let len = std::fs::metadata(o.target_file())
        .map(|m| m.len())
        .map_err(|e| {
            violation(
                req,
                format!("an empty {{dir}}/{}", o.name),
                format!("no file: {e}"),
            )
        })?;
    ensure(len == 0, req, "an empty file", || format!("{len} octets"))?;
    Ok(Done::Pass)
}

/// The get must fail and leave no `{dir}/{name}`.
fn failed_no_file(o: &Outcome, req: &str) -> Res<Done> {
    failed(o, req)?;
    let f = o.target_file();
    ensure(
        !f.exists(),
        req,
        format!("no file {{dir}}/{} (nothing presented as complete)", o.name),
        || {
            format!(
                "it exists with {} octets",
                std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0)
            )
        },
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

fn failed_only(o: &Outcome, req: &str) -> Res<Done> {
    failed(o, req)?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// The client sent `dir` and printed `names` (the listing's valid entries) on stdout.
fn listed(o: &Outcome, req: &str, names: &[&str]) -> Res<()> {
    ensure(
        o.log.requests.iter().any(|r| r.as_slice() == b"dir\n"),
        req,
        "a `dir` request",
        || {
            format!(
                "requests {:?}",
                o.log.requests.iter().map(|r| show(r)).collect::<Vec<_>>()
            )
        },
    )?;
    let out = String::from_utf8_lossy(&o.stdout);
    let missing: Vec<&&str> = names.iter().filter(|n| !out.contains(**n)).collect();
    ensure(
        missing.is_empty(),
        req,
        format!("the listing's valid entries {names:?} shown"),
        || format!("{missing:?} missing from the output"),
    )
}

/// A listing with an entry whose name is hostile (NAME-9) among valid ones ending with
/// `z.txt`: nothing may be created anywhere; the entry is skipped and the rest of the
/// listing presented (NAME-14).
fn hostile_listing(o: &Outcome, req: &str) -> Res<Done> {
    let t = tree(&o.work);
    ensure(t == ["d/"], req, "no file created anywhere", || {
        format!("files now: {t:?}")
    })?;
    succeeded(o, "NAME-14")?;
    listed(o, "NAME-14", &["z.txt"])?;
    Ok(Done::Pass)
}

fn ok_only(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    Ok(Done::Pass)
}

fn ok_dir_visible(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, "DIR-8")?;
    let out = String::from_utf8_lossy(&o.stdout);
    let raw: Vec<String> = ['\u{202e}', '\u{200b}']
        .iter()
        .filter(|c| out.contains(**c))
        .map(|c| format!("U+{:04X}", *c as u32))
        .collect();
    ensure(
        raw.is_empty(),
        req,
        "invisible characters shown visibly (escaped)",
        || format!("the output contains {} as is", raw.join(" and ")),
    )?;
    Ok(Done::Pass)
}

fn ok_put(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let local = std::fs::read(o.target_file()).map_err(crate::net::local)?;
    let up = o
        .log
        .uploads
        .iter()
        .find(|u| u.data == local)
        .ok_or_else(|| {
            violation(
                req,
                format!("an upload of the {} octets of the local file", local.len()),
                format!("{} uploads, none with that content", o.log.uploads.len()),
            )
        })?;
    ensure(
        up.name == o.name.as_bytes(),
        req,
        format!("the name {:?}", o.name),
        || show(&up.name),
    )?;
    ensure(
        up.size == local.len() as u64,
        "PUT-1",
        format!("SIZE {}", local.len()),
        || up.size.to_string(),
    )?;
    ensure(
        up.trailer == Some(Trailer::End(Digest::of(&local))),
        "SUM-1",
        format!("end {}", Digest::of(&local)),
        || {
            up.trailer
                .as_ref()
                .map_or_else(|| "no trailer".to_owned(), Trailer::show)
        },
    )?;
    Ok(Done::Pass)
}

fn ok_put_nfc(o: &Outcome, req: &str) -> Res<Done> {
    let nfc = "caf\u{e9}.txt";
    match o.log.uploads.first() {
        Some(u) => ensure(
            u.name == nfc.as_bytes(),
            req,
            format!("the NFC name {nfc:?}"),
            || show(&u.name),
        )?,
        None => {
            return Err(violation(
                req,
                format!("an upload named {nfc:?}"),
                o.status(),
            ));
        }
    }
    succeeded(o, req)?;
    Ok(Done::Pass)
}

fn symlink_kept(o: &Outcome, req: &str) -> Res<Done> {
    let target = o.work.join("keep-target");
    let d = file_digest(&target);
    ensure(
        d == Some(Digest::of(b"precious")),
        req,
        "the symbolic link's target unchanged",
        || "the target was overwritten",
    )?;
    if o.code == Some(0) {
        let meta = std::fs::symlink_metadata(o.target_file()).map_err(crate::net::local)?;
        ensure(
            meta.is_file(),
            req,
            "{dir}/{name} replaced by a regular file",
            || "still a link",
        )?;
        let got = std::fs::read(o.target_file()).map_err(crate::net::local)?;
        ensure(got == content(), "GET-5", "the content sent", || {
            format!("{} octets", got.len())
        })?;
    }
    Ok(Done::Pass)
}

// -------------------------------------------------------------------- setups ---

fn write_put_file(dir: &Path, name: &str, len: usize) -> std::io::Result<()> {
    let data: Vec<u8> = (0..len).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    std::fs::write(dir.join(name), data)
}

fn setup_put_big(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 2 * 1_048_576 + 1)
}

fn setup_put_small(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 100)
}

fn setup_put_empty(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 0)
}

fn setup_symlink(dir: &Path, work: &Path, name: &str) -> std::io::Result<()> {
    std::fs::write(work.join("keep-target"), b"precious")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink("../keep-target", dir.join(name))?;
    Ok(())
}

// --------------------------------------------------------------------- cases ---

pub(crate) fn all() -> Vec<ClientCase> {
    let c = content();
    let bad_digest = Digest::of(b"not the content");
    let mut trunc = get_reply(&c, 1000);
    trunc.truncate(format!("ok get 3000 {MTIME}\n").len() + 1500);
    let mut abort_mid = format!("ok get 3000 {MTIME}\ndata 1000\n").into_bytes();
    abort_mid.extend_from_slice(&c[..1000]);
    abort_mid.extend_from_slice(b"abort 431 storage\n");
    let mut overrun = format!("ok get 10 {MTIME}\ndata 12\n").into_bytes();
    overrun.extend_from_slice(b"0123456789ab");
    overrun.extend_from_slice(format!("end {}\n", Digest::of(b"0123456789")).as_bytes());
    let mut early_end = format!("ok get 10 {MTIME}\ndata 5\n01234").into_bytes();
    early_end.extend_from_slice(format!("end {}\n", Digest::of(b"01234")).as_bytes());
    let data0 = format!(
        "ok get 5 {MTIME}\ndata 0\ndata 5\nhelloend {}\n",
        Digest::of(b"hello")
    )
    .into_bytes();
    let zeros = format!(
        "ok get 05 {MTIME}\ndata 5\nhelloend {}\n",
        Digest::of(b"hello")
    )
    .into_bytes();
    let upper = format!(
        "OK get 5 {MTIME}\ndata 5\nhelloend {}\n",
        Digest::of(b"hello")
    )
    .into_bytes();
    let long_listing = {
        let mut out = b"ok dir 10000\n".to_vec();
        for i in 0..10_000 {
            out.extend_from_slice(format!("{i} {MTIME} f{i:05}\n").as_bytes());
        }
        out
    };

    vec![
        // ---- downloads that must succeed
        ClientCase::new("GET-5/1", "get: a multi-chunk binary file is stored", &["GET-5", "DATA-3", "DATA-10", "SUM-2", "FRAME-3", "FRAME-6", "CLOSE-2"], Op::Get, get_mock(get_reply(&c, 1000), After::Continue), ok_get),
        ClientCase::new("GET-5/2", "get: an empty file (trailer only) is stored", &["GET-5", "DATA-10"], Op::Get, get_mock(get_reply(b"", 1), After::Continue), ok_get_empty),
        ClientCase::new("GET-5/3", "get: a UTF-8 name with spaces", &["GET-5", "NAME-6"], Op::Get, get_mock(get_reply(&c, 4096), After::Continue), ok_get).name("射频 仿真 (final).pptx"),
        ClientCase::new("FRAME-1/1", "get: the reply arrives one octet per write", &["FRAME-1"], Op::Get, Mock { drip: Some((1, Duration::ZERO)), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("FRAME-1/2", "get: a slow drip within the stall limit still succeeds", &["FRAME-1", "DATA-10"], Op::Get, Mock { drip: Some((64, Duration::from_millis(25))), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("FRAME-3/1", "get: CR LF line ends from the server are accepted", &["FRAME-3"], Op::Get, get_mock(get_reply_with(&c, 1000, Digest::of(&c), "\r\n"), After::Continue), ok_get),
        ClientCase::new("HELLO-6/1", "unknown greeting parameters, extensions and versions are ignored", &["HELLO-6", "EXT-5", "EXT-3", "VER-3"], Op::Get, Mock {
            greeting: b"ferry/7,1 x-colour=blue max-line=4096 max-name=255 max-size=1099511627776 max-chunk=1048576 ext=x-zip,starttls max-eager=1048576 idle=300 stall=60 future-param=\n".to_vec(),
            ..get_mock(get_reply(&c, 1000), After::Continue)
        }, ok_get),
        ClientCase::new("CONN-5/1", "nothing is sent before the greeting", &["CONN-5"], Op::Get, Mock { greeting_delay: Duration::from_millis(400), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("NAME-10/1", "get does not write through a symbolic link at the destination", &["NAME-10"], Op::Get, get_mock(get_reply(&c, 1000), After::Continue), symlink_kept).setup(setup_symlink),
        // ---- downloads that must fail and leave nothing
        ClientCase::new("SUM-2/1", "get: wrong digest: failure, no file", &["SUM-2", "SUM-4", "DATA-10", "GET-11"], Op::Get, get_mock(get_reply_with(&c, 1000, bad_digest, "\n"), After::Continue), failed_no_file),
        ClientCase::new("DATA-10/1", "get: truncated payload then EOF: failure, no file", &["DATA-10", "GET-11", "CLOSE-7"], Op::Get, get_mock(trunc, After::Close), failed_no_file),
        ClientCase::new("DATA-9/1", "get: abort 431 in the middle: failure, no file", &["DATA-9", "GET-11"], Op::Get, get_mock(abort_mid, After::Continue), failed_no_file),
        ClientCase::new("DATA-9/2", "get: abort 430 before any chunk: failure, no file", &["DATA-9", "GET-11"], Op::Get, get_mock(format!("ok get 3000 {MTIME}\nabort 430 changed\n").into_bytes(), After::Continue), failed_no_file),
        ClientCase::new("DATA-7/1", "get: a chunk past SIZE (framing violation): failure, no file", &["DATA-7", "DATA-5"], Op::Get, get_mock(overrun, After::Hold), failed_no_file),
        ClientCase::new("DATA-5/1", "get: `data 0`: failure, no file", &["DATA-5", "DATA-7"], Op::Get, get_mock(data0, After::Hold), failed_no_file),
        ClientCase::new("DATA-5/2", "get: `end` before SIZE octets: failure, no file", &["DATA-5", "DATA-10"], Op::Get, get_mock(early_end, After::Hold), failed_no_file),
        ClientCase::new("FRAME-2/1", "a reply line longer than 4096 octets: failure", &["FRAME-2", "ERR-10"], Op::Get, get_mock(vec![b'x'; 5000], After::Hold), failed_no_file),
        ClientCase::new("FRAME-5/1", "a SIZE with a leading zero: failure, no file", &["FRAME-5", "FRAME-7", "ERR-10"], Op::Get, get_mock(zeros, After::Hold), failed_no_file),
        ClientCase::new("FRAME-7/1", "an upper-case keyword: failure, no file", &["FRAME-7", "ERR-10"], Op::Get, get_mock(upper, After::Hold), failed_no_file),
        ClientCase::new("ERR-10/1", "get answered with `go`: failure, no file", &["ERR-10"], Op::Get, get_mock(b"go\n".to_vec(), After::Hold), failed_no_file),
        ClientCase::new("ERR-3/1", "an unknown error code: failure, no file", &["ERR-3"], Op::Get, get_mock(b"err 599 something new\n".to_vec(), After::Continue), failed_no_file),
        ClientCase::new("ERR-4/1", "an error whose text looks like success: failure, no file", &["ERR-4"], Op::Get, get_mock(format!("err 511 ok get 5 {MTIME}\n").into_bytes(), After::Continue), failed_no_file),
        ClientCase::new("ERR-9/1", "err 421 instead of the reply, then close: failure", &["ERR-9", "CLOSE-7"], Op::Get, get_mock(b"err 421 timeout\n".to_vec(), After::Close), failed_no_file),
        ClientCase::new("CLOSE-7/1", "the server closes without replying: failure, no file", &["CLOSE-7", "PIPE-6"], Op::Get, get_mock(Vec::new(), After::Close), failed_no_file),
        // ---- first line
        ClientCase::new("HELLO-11/1", "`err 420 busy` instead of a greeting: failure, nothing sent", &["HELLO-11", "CONN-5"], Op::Get, Mock { greeting: b"err 420 busy\n".to_vec(), after_greeting: After::Close, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-10/1", "a greeting without version 1: failure, nothing sent", &["HELLO-10"], Op::Get, Mock { greeting: GREETING.replace("ferry/1 ", "ferry/2,3 ").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/1", "a greeting without max-line: failure, nothing sent", &["HELLO-9", "HELLO-2"], Op::Get, Mock { greeting: GREETING.replace(" max-line=4096", "").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/2", "a greeting with max-chunk=2097152: failure, nothing sent", &["HELLO-9", "HELLO-5"], Op::Get, Mock { greeting: GREETING.replace("max-chunk=1048576", "max-chunk=2097152").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/3", "a greeting with idle=0: failure, nothing sent", &["HELLO-9", "HELLO-7"], Op::Get, Mock { greeting: GREETING.replace("idle=300", "idle=0").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/4", "a greeting with a parameter twice: failure, nothing sent", &["HELLO-9", "HELLO-3"], Op::Get, Mock { greeting: GREETING.replace("stall=60", "stall=60 idle=300").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/5", "a first line that is not ferry: failure, nothing sent", &["HELLO-9"], Op::Get, Mock { greeting: b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        // ---- listings
        ClientCase::new("DIR-8/1", "dir: a long valid listing is accepted", &["DIR-8"], Op::Dir, Mock { dir: Answer { bytes: long_listing, then: After::Continue }, ..Mock::default() }, ok_only),
        ClientCase::new("DIR-8/2", "dir: COUNT 2^64-1 then EOF: no huge allocation, failure", &["DIR-8", "CLOSE-7"], Op::Dir, Mock { dir: Answer { bytes: format!("ok dir 18446744073709551615\n1 {MTIME} a\n").into_bytes(), then: After::Close }, ..Mock::default() }, failed_only),
        ClientCase::new("NAME-9/1", "dir: a listed name `../x` creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-10", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b"../x", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-9/2", "dir: a listed name `a/b` creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-10", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b"a/b", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-9/3", "dir: a listed name `.hidden` creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b".hidden", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-9/4", "dir: a listed name not in NFC creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-5", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&["cafe\u{301}.txt".as_bytes(), b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("FRAME-4/1", "dir: a listed name that is not UTF-8 creates nothing; the entry is skipped, the rest listed", &["FRAME-4", "NAME-9", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b"caf\xe9.txt", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-12/1", "dir: invisible characters in names are shown visibly", &["NAME-12"], Op::Dir, Mock { dir: Answer { bytes: listing(&["a\u{200b}b".as_bytes(), "evil\u{202e}fdp.exe".as_bytes()]), then: After::Continue }, ..Mock::default() }, ok_dir_visible),
        // ---- uploads
        ClientCase::new("PUT-1/1", "put: 2 MiB + 1 octets: exact SIZE, chunks and digest", &["PUT-1", "DATA-1", "DATA-2", "DATA-4", "SUM-1", "PUT-6"], Op::Put, Mock::default(), ok_put).setup(setup_put_big),
        ClientCase::new("PUT-1/2", "put: an empty file", &["PUT-1", "DATA-1", "SUM-1"], Op::Put, Mock::default(), ok_put).setup(setup_put_empty),
        ClientCase::new("PUT-7/1", "put with max-eager=0 uses flow wait", &["PUT-7"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, ..Mock::default() }, ok_put).setup(setup_put_small),
        ClientCase::new("PUT-7/2", "put of more than max-eager uses flow wait", &["PUT-7"], Op::Put, Mock { greeting: greeting_eager(4), max_eager: 4, ..Mock::default() }, ok_put).setup(setup_put_small),
        ClientCase::new("PUT-5/1", "put wait: nothing sent before go", &["PUT-5"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::Accept { go_delay: Duration::from_millis(400) }, ..Mock::default() }, ok_put).setup(setup_put_small),
        ClientCase::new("PUT-5/2", "put wait refused with 512: no payload, failure", &["PUT-5", "PUT-21"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::Refuse(b"err 512 exists\n".to_vec()), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PUT-21/1", "put refused with 512: not reported as success", &["PUT-21"], Op::Put, Mock { put: PutAnswer::Refuse(b"err 512 exists\n".to_vec()), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PUT-21/2", "`ok put` with another DIGEST: not success", &["PUT-21"], Op::Put, Mock { put: PutAnswer::ReplyWith(format!("ok put 100 {bad_digest}\n").into_bytes(), After::Continue), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PUT-21/3", "`ok put` with another SIZE: not success", &["PUT-21"], Op::Put, Mock { put: PutAnswer::ReplyWith(b"ok put 99 xxh3-128:99aa06d3014798d86001c324468d497f\n".to_vec(), After::Continue), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PIPE-6/1", "connection closed after the trailer, before the reply: not success", &["PIPE-6", "CLOSE-7"], Op::Put, Mock { put: PutAnswer::ReplyWith(Vec::new(), After::Close), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("ERR-9/2", "err 422 as the reply to a put: not success", &["ERR-9"], Op::Put, Mock { put: PutAnswer::ReplyWith(b"err 422 shutting-down\n".to_vec(), After::Close), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("NAME-8/1", "put of a local name in NFD sends the NFC name", &["NAME-8"], Op::Put, Mock::default(), ok_put_nfc).name("cafe\u{301}.txt").setup(setup_put_small),
        ClientCase::new("CLOSE-3/1", "the client closes its side once it has read bye", &["CLOSE-3"], Op::Dir, Mock { check_close_after_bye: true, ..Mock::default() }, ok_only),
    ]
}
