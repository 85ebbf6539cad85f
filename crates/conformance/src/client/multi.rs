//! Client cases that need more than one operation: a `resume` after an interrupted `get` in
//! the same `{dir}` (GET-6 to GET-8, GET-13, SUM-5), and two files in one session with `mget`
//! and `mput` (PIPE-2, PIPE-5, PIPE-6, ERR-9, PUT-5 between requests).

use std::path::Path;
use std::time::Duration;

use ferry_wire::Digest;

use super::cases::{MTIME, content, get_reply_with, nothing_outside, ok_get, write_put_file};
use super::{After, Answer, ClientCase, GREETING, Mock, NAME2, Op, Outcome, PutAnswer};
use crate::case::{Done, Res, ensure, unimplemented, violation};
use crate::net::show;

/// Octets of `content()` the interrupted get delivers before the server cuts it.
const KEPT: usize = 1000;

/// What the server holds after the interrupted get in the cases where the file changed:
/// as long as [`content`], different from its first octet on.
fn changed() -> Vec<u8> {
    (0..3000u32).map(|i| ((i * 17 + 101) % 253) as u8).collect()
}

/// The file after it shrank below the kept octets (GET-8).
fn shrunk() -> Vec<u8> {
    changed()[..500].to_vec()
}

/// `ok get SIZE` for `data`, then its octets from `offset` in chunks of 1000 and the
/// whole-file digest; `err 515` when `offset` is beyond the end.
fn tail(data: &[u8], offset: u64) -> Answer {
    let bytes = match usize::try_from(offset) {
        Ok(k) if k <= data.len() => {
            let mut out = format!("ok get {} {MTIME}\n", data.len()).into_bytes();
            for piece in data[k..].chunks(1000) {
                out.extend_from_slice(format!("data {}\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
            }
            out.extend_from_slice(format!("end {}\n", Digest::of(data)).as_bytes());
            out
        }
        _ => b"err 515 bad-offset\n".to_vec(),
    };
    Answer {
        bytes,
        then: After::Continue,
    }
}

/// The first [`KEPT`] octets of a get of `content()`, then `trailer` (nothing: EOF).
fn cut(trailer: &str) -> Mock {
    let c = content();
    let mut bytes = format!("ok get {} {MTIME}\ndata {KEPT}\n", c.len()).into_bytes();
    bytes.extend_from_slice(&c[..KEPT]);
    bytes.extend_from_slice(trailer.as_bytes());
    Mock {
        get: Answer {
            bytes,
            then: After::Close,
        },
        ..Mock::default()
    }
}

fn serve_content(_: &str, offset: u64) -> Answer {
    tail(&content(), offset)
}

fn serve_changed(_: &str, offset: u64) -> Answer {
    tail(&changed(), offset)
}

fn serve_shrunk(_: &str, offset: u64) -> Answer {
    tail(&shrunk(), offset)
}

/// A server that breaks GET-4: `ok get` with SIZE below the OFFSET asked for.
fn serve_size_below_offset(_: &str, offset: u64) -> Answer {
    if offset == 0 {
        return tail(&content(), 0);
    }
    Answer {
        bytes: format!("ok get {} {MTIME}\n", offset - 1).into_bytes(),
        then: After::Hold,
    }
}

/// The offsets of the client's `get` requests, in order.
fn get_offsets(requests: &[Vec<u8>]) -> Vec<u64> {
    requests
        .iter()
        .filter_map(|r| {
            let rest = r.strip_prefix(b"get ")?;
            let sp = rest.iter().position(|&b| b == b' ')?;
            std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()
        })
        .collect()
}

/// The octets of `content()` the interrupted get left anywhere in the work folder (the longest
/// non-empty prefix of the file found in one file), with the file's path.
fn kept_prefix(o: &Outcome) -> Option<(String, usize)> {
    let c = content();
    o.between
        .iter()
        .filter(|(_, data)| !data.is_empty() && data.len() <= KEPT && c.starts_with(data))
        .map(|(p, data)| (p.clone(), data.len()))
        .max_by_key(|(_, n)| *n)
}

/// The first `get` of the resume run: its offset, checked against what was received.
fn resume_offset(o: &Outcome, req: &str) -> Res<u64> {
    let offsets = get_offsets(&o.log.requests);
    let Some(&k) = offsets.first() else {
        return Err(violation(
            req,
            "a get request",
            format!("requests {:?}", requests(o)),
        ));
    };
    ensure(
        k <= KEPT as u64,
        "GET-6",
        format!("OFFSET = the length of the kept octets, at most the {KEPT} received"),
        || format!("get {k}"),
    )?;
    Ok(k)
}

fn requests(o: &Outcome) -> Vec<String> {
    o.log.requests.iter().map(|r| show(r).into()).collect()
}

fn file_is(path: &Path, want: &[u8], req: &str, what: &str) -> Res<()> {
    let got = std::fs::read(path).map_err(|e| {
        violation(
            req,
            format!("{} with {what}", path.display()),
            format!("cannot read it: {e}"),
        )
    })?;
    ensure(got == want, req, what.to_owned(), || {
        format!("{} octets that differ", got.len())
    })
}

fn no_file(path: &Path, req: &str) -> Res<()> {
    ensure(
        !path.exists(),
        req,
        format!("no file {} (nothing presented as complete)", path.display()),
        || {
            format!(
                "it exists with {} octets",
                std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            )
        },
    )
}

fn exit_ok(o: &Outcome, req: &str) -> Res<()> {
    ensure(o.code == Some(0), req, "exit status 0 (success)", || {
        o.status()
    })
}

fn exit_failed(o: &Outcome, req: &str, why: &str) -> Res<()> {
    ensure(
        o.code != Some(0),
        req,
        format!("a non-zero exit status ({why})"),
        || "exit status 0 (reported as success)",
    )
}

// ------------------------------------------------------------------ resume ---

/// The file did not change: the resumed get verifies the kept octets plus the tail at once.
fn resumed_once(o: &Outcome, req: &str) -> Res<Done> {
    let k = resume_offset(o, req)?;
    let offsets = get_offsets(&o.log.requests);
    ensure(
        offsets.len() == 1,
        "GET-7",
        "one get: the kept octets followed by the tail match the trailer's digest",
        || format!("gets from offsets {offsets:?}"),
    )?;
    // Exit 0, the whole file, nothing outside `{dir}`: the judge of a plain get.
    ok_get(o, req)?;
    if k > 0 {
        return Ok(Done::Pass);
    }
    match kept_prefix(o) {
        Some((path, n)) => Err(unimplemented(format!(
            "the interrupted get kept {n} octets (in {path}), but `resume` asked from offset 0: \
             resumption not supported? (exit 127 for `resume` says so)"
        ))),
        None => Ok(Done::PassWith(
            "the interrupted get kept nothing, so the resume started from 0 (GET-12 allows it)"
                .into(),
        )),
    }
}

/// After `abort 430` nothing may be kept: the resume starts from 0.
fn restarted_after_changed(o: &Outcome, req: &str) -> Res<Done> {
    let k = resume_offset(o, req)?;
    ensure(
        k == 0,
        "GET-13",
        "get from offset 0: the octets of a get that ended with abort 430 are not kept",
        || format!("get {k}"),
    )?;
    ok_get(o, req)
}

/// The file changed since the interrupted get: the digest differs, the client starts over.
fn stale_prefix_replaced(o: &Outcome, req: &str) -> Res<Done> {
    let k = resume_offset(o, req)?;
    let target = o.target_file();
    if o.code != Some(0) {
        no_file(&target, "SUM-4")?;
        return Err(violation(
            "SUM-5",
            "after the mismatch of the resumed get, the file again from offset 0",
            format!("failure after gets {:?}", get_offsets(&o.log.requests)),
        ));
    }
    file_is(
        &target,
        &changed(),
        "SUM-4",
        "the file as it is now (never the stale kept octets with the new tail)",
    )?;
    nothing_outside(o, "NAME-10")?;
    if k == 0 {
        return Ok(Done::PassWith(
            "the resume started from 0, so the stale octets were never used".into(),
        ));
    }
    let offsets = get_offsets(&o.log.requests);
    ensure(
        offsets == [k, 0],
        "SUM-5",
        format!("get {k}, then get 0 after the mismatch"),
        || format!("gets from offsets {offsets:?}"),
    )?;
    Ok(Done::Pass)
}

/// The file shrank below the kept octets: 515, then from 0.
fn restarted_after_bad_offset(o: &Outcome, req: &str) -> Res<Done> {
    let k = resume_offset(o, req)?;
    let target = o.target_file();
    let short = shrunk();
    if k <= short.len() as u64 {
        // Nothing (or little enough) kept: no 515; a resume from k ≤ 500 of a changed file
        // mismatches and SUM-5 applies instead.
        if o.code == Some(0) {
            file_is(&target, &short, "SUM-4", "the 500 octets of the file now")?;
        } else {
            no_file(&target, "SUM-4")?;
        }
        return Ok(Done::PassWith(format!(
            "the resume asked from {k}, within the shrunk file: no 515 to answer"
        )));
    }
    if o.code != Some(0) {
        no_file(&target, "GET-11")?;
        return Err(violation(
            "GET-8",
            "after err 515 for the resumed get, the file again from offset 0",
            format!("failure after gets {:?}", get_offsets(&o.log.requests)),
        ));
    }
    let offsets = get_offsets(&o.log.requests);
    ensure(
        offsets == [k, 0],
        "GET-8",
        format!("get {k}, err 515, then get 0"),
        || format!("gets from offsets {offsets:?}"),
    )?;
    file_is(&target, &short, req, "the 500 octets of the file now")?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// `ok get` with SIZE below OFFSET: a protocol violation by the server; the get fails.
fn refused_size_below_offset(o: &Outcome, req: &str) -> Res<Done> {
    let k = resume_offset(o, req)?;
    if k == 0 {
        exit_ok(o, req)?;
        file_is(
            &o.target_file(),
            &content(),
            req,
            "the 3000 octets of the file",
        )?;
        return Ok(Done::PassWith(
            "the resume started from 0: the bad reply was never sent".into(),
        ));
    }
    exit_failed(o, req, "`ok get` with SIZE < OFFSET is not a valid reply")?;
    no_file(&o.target_file(), "GET-11")?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

// -------------------------------------------------------------------- mget ---

/// The content of `{name2}` in the mget cases.
fn content2() -> Vec<u8> {
    (0..2500u32).map(|i| ((i * 13 + 5) % 241) as u8).collect()
}

fn serve_two(name: &str, offset: u64) -> Answer {
    if name == NAME2 {
        tail(&content2(), offset)
    } else {
        tail(&content(), offset)
    }
}

fn first_missing(name: &str, offset: u64) -> Answer {
    if name == NAME2 {
        return tail(&content2(), offset);
    }
    Answer {
        bytes: b"err 511 not-found\n".to_vec(),
        then: After::Continue,
    }
}

fn first_corrupt(name: &str, offset: u64) -> Answer {
    if name == NAME2 {
        return tail(&content2(), offset);
    }
    Answer {
        bytes: get_reply_with(&content(), 1000, Digest::of(b"other"), "\n"),
        then: After::Continue,
    }
}

fn first_changed(name: &str, offset: u64) -> Answer {
    if name == NAME2 {
        return tail(&content2(), offset);
    }
    let c = content();
    let mut bytes = format!("ok get {} {MTIME}\ndata 1000\n", c.len()).into_bytes();
    bytes.extend_from_slice(&c[..1000]);
    bytes.extend_from_slice(b"abort 430 changed\n");
    Answer {
        bytes,
        then: After::Continue,
    }
}

fn first_busy(_: &str, _: u64) -> Answer {
    Answer {
        bytes: b"err 421 busy\n".to_vec(),
        then: After::Close,
    }
}

fn second_shutting_down(name: &str, offset: u64) -> Answer {
    if name == NAME2 {
        return Answer {
            bytes: b"err 422 shutting-down\n".to_vec(),
            then: After::Close,
        };
    }
    tail(&content(), offset)
}

fn second_unanswered(name: &str, offset: u64) -> Answer {
    if name == NAME2 {
        return Answer {
            bytes: Vec::new(),
            then: After::Close,
        };
    }
    tail(&content(), offset)
}

fn two_gets(o: &Outcome, req: &str) -> Res<()> {
    let names: Vec<&[u8]> = o
        .log
        .requests
        .iter()
        .filter(|r| r.starts_with(b"get "))
        .map(Vec::as_slice)
        .collect();
    ensure(
        names.len() == 2
            && names[0].ends_with(format!(" {}\n", o.name).as_bytes())
            && names[1].ends_with(format!(" {NAME2}\n").as_bytes()),
        req,
        format!("get … {} then get … {NAME2}, one session", o.name),
        || format!("requests {:?}", requests(o)),
    )
}

/// After a non-closing err to the first request the session goes on (ERR-5, PIPE-5); the spec
/// does not oblige a client to go on with the second name, but `mget`/`mput` asks for both.
fn went_on(o: &Outcome, verb: &[u8]) -> Res<()> {
    let second = o
        .log
        .requests
        .iter()
        .any(|r| r.starts_with(verb) && r.ends_with(format!(" {NAME2}\n").as_bytes()));
    if second {
        Ok(())
    } else {
        Err(unimplemented(format!(
            "after the err to {{name}} the client did not ask for {{name2}} ({NAME2}): `mget` \
             and `mput` ask for both, and a non-closing err leaves the session usable (ERR-5)"
        )))
    }
}

fn both_got(o: &Outcome, req: &str) -> Res<Done> {
    two_gets(o, req)?;
    exit_ok(o, req)?;
    file_is(
        &o.target_file(),
        &content(),
        req,
        "the first file's 3000 octets",
    )?;
    file_is(
        &o.dir.join(NAME2),
        &content2(),
        req,
        "the second file's 2500 octets",
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// The first get failed on its own; the second one still arrives (PIPE-5).
fn second_got_first_not(o: &Outcome, req: &str) -> Res<Done> {
    exit_failed(o, "GET-11", "the first file was not downloaded")?;
    no_file(&o.target_file(), "GET-11")?;
    went_on(o, b"get ")?;
    two_gets(o, req)?;
    file_is(
        &o.dir.join(NAME2),
        &content2(),
        "PIPE-5",
        "the second file's 2500 octets (an err ends only its own request)",
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// The session ended at the first reply: neither file, failure, one connection.
fn neither_got(o: &Outcome, req: &str) -> Res<Done> {
    exit_failed(o, req, "the session ended before any file arrived")?;
    no_file(&o.target_file(), req)?;
    no_file(&o.dir.join(NAME2), req)?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// The first file arrived; the session ended before the second: that one is not performed.
fn first_got_second_not(o: &Outcome, req: &str) -> Res<Done> {
    exit_failed(o, req, "the second file was not downloaded")?;
    file_is(
        &o.target_file(),
        &content(),
        req,
        "the first file's 3000 octets",
    )?;
    no_file(&o.dir.join(NAME2), req)?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

// -------------------------------------------------------------------- mput ---

/// Local files for mput: `{name}` of `len1` octets, `{name2}` of `len2` octets.
fn setup_two(dir: &Path, name: &str, len1: usize, len2: usize) -> std::io::Result<()> {
    write_put_file(dir, name, len1)?;
    let data: Vec<u8> = (0..len2).map(|i| ((i * 11 + 1) % 255) as u8).collect();
    std::fs::write(dir.join(NAME2), data)
}

fn setup_two_small(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    setup_two(dir, name, 100, 200)
}

fn setup_two_large(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    setup_two(dir, name, 3000, 4000)
}

fn setup_small_then_large(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    setup_two(dir, name, 300, 3000)
}

/// `{name}` of exactly the `max-eager` of [`eager_limit`]`(1000, …)`, then a smaller one.
fn setup_at_the_limit(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    setup_two(dir, name, 1000, 500)
}

fn greeting_eager(max_eager: u64) -> Vec<u8> {
    GREETING
        .replace("max-eager=1048576", &format!("max-eager={max_eager}"))
        .into_bytes()
}

fn eager_limit(max_eager: u64, put: PutAnswer) -> Mock {
    Mock {
        greeting: greeting_eager(max_eager),
        max_eager,
        put,
        ..Mock::default()
    }
}

fn accept_slowly() -> PutAnswer {
    PutAnswer::Accept {
        go_delay: Duration::from_millis(300),
    }
}

fn refuse_first(name: &str) -> PutAnswer {
    if name == NAME2 {
        PutAnswer::Accept {
            go_delay: Duration::ZERO,
        }
    } else {
        PutAnswer::Refuse(b"err 512 exists\n".to_vec())
    }
}

/// Checks the upload of local file `local` under `name` arrived whole.
fn uploaded(o: &Outcome, name: &str, req: &str) -> Res<()> {
    let local = std::fs::read(o.dir.join(name)).map_err(crate::net::local)?;
    let up = o.log.uploads.iter().find(|u| u.name == name.as_bytes());
    let Some(up) = up else {
        return Err(violation(
            req,
            format!("an upload named {name:?}"),
            format!("requests {:?}", requests(o)),
        ));
    };
    ensure(
        up.data == local && up.size == local.len() as u64,
        req,
        format!("the {} octets of the local {name}", local.len()),
        || format!("{} octets announced, {} received", up.size, up.data.len()),
    )?;
    ensure(
        matches!(up.trailer, Some(crate::net::Trailer::End(d)) if d == Digest::of(&local)),
        "SUM-1",
        "end with the digest of the octets sent",
        || format!("{:?}", up.trailer),
    )
}

fn both_put(o: &Outcome, req: &str) -> Res<Done> {
    exit_ok(o, req)?;
    uploaded(o, &o.name, req)?;
    uploaded(o, NAME2, req)?;
    let puts: Vec<String> = o
        .log
        .requests
        .iter()
        .filter(|r| r.starts_with(b"put "))
        .map(|r| show(r).into())
        .collect();
    ensure(puts.len() == 2, req, "two puts", || format!("{puts:?}"))?;
    Ok(Done::Pass)
}

fn second_put_first_refused(o: &Outcome, req: &str) -> Res<Done> {
    exit_failed(o, "PUT-21", "the first put was refused")?;
    went_on(o, b"put ")?;
    uploaded(o, NAME2, req)?;
    Ok(Done::Pass)
}

/// The session ended at the first put's reply: failure; the second put was never sent if the
/// first waited for `go`.
fn ended_at_first_put(o: &Outcome, req: &str) -> Res<Done> {
    exit_failed(o, req, "the session ended before the files were stored")?;
    let second: Vec<String> = o
        .log
        .requests
        .iter()
        .filter(|r| r.starts_with(b"put ") && r.ends_with(format!(" {NAME2}\n").as_bytes()))
        .map(|r| show(r).into())
        .collect();
    ensure(
        second.is_empty(),
        "ERR-9",
        "no second put after err 421 ended the session",
        || format!("{second:?}"),
    )?;
    Ok(Done::Pass)
}

fn eager_ended(o: &Outcome, req: &str) -> Res<Done> {
    exit_failed(o, req, "the session ended before the files were stored")?;
    Ok(Done::Pass)
}

#[rustfmt::skip]
pub(super) fn all() -> Vec<ClientCase> {
    vec![
        ClientCase::new("GET-7/1", "resume after a get cut by EOF: one get from the kept octets, verified, the whole file", &["GET-7", "GET-6", "GET-12"], Op::Resume, Mock { get_at: Some(serve_content), ..Mock::default() }, resumed_once).after_run(Op::Get, cut("")),
        ClientCase::new("GET-7/2", "resume after a get ended by abort 431: one get from the kept octets, the whole file", &["GET-7", "GET-6", "GET-12"], Op::Resume, Mock { get_at: Some(serve_content), ..Mock::default() }, resumed_once).after_run(Op::Get, cut("abort 431 storage\n")),
        ClientCase::new("GET-13/2", "resume after abort 430: nothing was kept, the get starts from 0", &["GET-13", "GET-6"], Op::Resume, Mock { get_at: Some(serve_content), ..Mock::default() }, restarted_after_changed).after_run(Op::Get, cut("abort 430 changed\n")),
        ClientCase::new("SUM-5/2", "resume after the file changed: mismatch, then the whole file from 0, never the stale octets", &["SUM-5", "SUM-4", "GET-7", "GET-11"], Op::Resume, Mock { get_at: Some(serve_changed), ..Mock::default() }, stale_prefix_replaced).after_run(Op::Get, cut("")),
        ClientCase::new("GET-8/1", "resume after the file shrank below the kept octets: err 515, then the file from 0", &["GET-8", "GET-11"], Op::Resume, Mock { get_at: Some(serve_shrunk), ..Mock::default() }, restarted_after_bad_offset).after_run(Op::Get, cut("")),
        ClientCase::new("ERR-10/6", "resume answered with `ok get` SIZE < OFFSET: failure, no file", &["ERR-10", "GET-4", "GET-11"], Op::Resume, Mock { get_at: Some(serve_size_below_offset), ..Mock::default() }, refused_size_below_offset).after_run(Op::Get, cut("")),
        ClientCase::new("PIPE-2/1", "mget: two files in one session, both stored", &["GET-11", "PIPE-2", "DATA-10"], Op::MGet, Mock { get_at: Some(serve_two), ..Mock::default() }, both_got),
        ClientCase::new("PIPE-5/1", "mget: the first name is not found, the second file is still stored", &["PIPE-5", "GET-11", "ERR-5"], Op::MGet, Mock { get_at: Some(first_missing), ..Mock::default() }, second_got_first_not),
        ClientCase::new("SUM-4/2", "mget: the first file fails its digest, the second is stored", &["SUM-4", "PIPE-5", "GET-11"], Op::MGet, Mock { get_at: Some(first_corrupt), ..Mock::default() }, second_got_first_not),
        ClientCase::new("GET-13/3", "mget: the first file ends with abort 430, the second is stored", &["GET-13", "GET-11", "PIPE-5"], Op::MGet, Mock { get_at: Some(first_changed), ..Mock::default() }, second_got_first_not),
        ClientCase::new("ERR-9/3", "mget: err 421 to the first get ends the session: neither file, failure", &["ERR-9", "PIPE-6", "GET-11"], Op::MGet, Mock { get_at: Some(first_busy), ..Mock::default() }, neither_got),
        ClientCase::new("ERR-9/4", "mget: err 422 to the second get: the first file stored, the second not, failure", &["ERR-9", "PIPE-6", "GET-11"], Op::MGet, Mock { get_at: Some(second_shutting_down), ..Mock::default() }, first_got_second_not),
        ClientCase::new("PIPE-6/2", "mget: the connection closes with the second get unanswered: not performed, failure", &["PIPE-6", "CLOSE-7", "GET-11"], Op::MGet, Mock { get_at: Some(second_unanswered), ..Mock::default() }, first_got_second_not),
        ClientCase::new("PIPE-2/2", "mput: two small files in one session (eager puts may be pipelined)", &["PUT-1", "SUM-1", "PIPE-2"], Op::MPut, Mock::default(), both_put).setup(setup_two_small),
        ClientCase::new("PIPE-2/3", "mput: two files above max-eager: each put waits for its go, nothing pipelined behind it", &["PUT-5", "PUT-7", "PIPE-2"], Op::MPut, eager_limit(1000, accept_slowly()), both_put).setup(setup_two_large),
        ClientCase::new("PIPE-2/4", "mput: a file under max-eager, then one above: now, then wait", &["PUT-7", "PUT-5", "PIPE-2"], Op::MPut, eager_limit(1000, accept_slowly()), both_put).setup(setup_small_then_large),
        ClientCase::new("PIPE-2/5", "mput: a file of exactly max-eager octets, then a smaller one: both stored", &["PUT-1", "PUT-7", "PIPE-2"], Op::MPut, eager_limit(1000, accept_slowly()), both_put).setup(setup_at_the_limit),
        ClientCase::new("PIPE-5/2", "mput: the first put is refused (512), the second is still sent and stored", &["PIPE-5", "PUT-21"], Op::MPut, Mock { put_for: Some(refuse_first), ..Mock::default() }, second_put_first_refused).setup(setup_two_small),
        ClientCase::new("PIPE-5/3", "mput with flow wait: the first put is refused (512), the second is still sent and stored", &["PIPE-5", "PUT-5", "PUT-21"], Op::MPut, Mock { put_for: Some(refuse_first), ..eager_limit(0, accept_slowly()) }, second_put_first_refused).setup(setup_two_large),
        ClientCase::new("ERR-9/5", "mput: err 421 instead of go ends the session: nothing more sent, failure", &["ERR-9", "PUT-21"], Op::MPut, eager_limit(0, PutAnswer::EndSession(b"err 421 busy\n".to_vec())), ended_at_first_put).setup(setup_two_large),
        ClientCase::new("ERR-9/6", "mput: err 422 after the first eager put ends the session: failure", &["ERR-9", "PIPE-6", "PUT-21"], Op::MPut, Mock { put: PutAnswer::EndSession(b"err 422 shutting-down\n".to_vec()), ..Mock::default() }, eager_ended).setup(setup_two_small),
    ]
}
