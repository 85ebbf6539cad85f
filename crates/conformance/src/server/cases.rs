//! Targeted server cases: what the example transcripts do not cover, one requirement (or a
//! small group) per case.

use std::time::{Duration, Instant, SystemTime};

use ferry_wire::{Code, Digest, PutFlow, PutMode, Reply, Timestamp};

use super::Ctx;
use crate::case::{Done, Res, ensure, unimplemented, violation};
use crate::net::{
    Conn, GetReply, LineRead, Trailer, after, payload_of, put_line, show, show_reply,
};

type CaseFn = fn(&mut Ctx<'_>) -> Res<Done>;

/// (id, title, requirements, body). The id's first part is the main requirement checked.
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "CONN-4/1",
        "greeting first, unprompted, valid; then nothing unsolicited",
        &[
            "CONN-4", "HELLO-1", "HELLO-2", "HELLO-3", "HELLO-4", "HELLO-5", "EXT-1", "CONN-8",
        ],
        conn_4_greeting,
    ),
    (
        "CONN-7/1",
        "sessions are independent; the server keeps listening after a session fails",
        &["CONN-7"],
        conn_7_independent,
    ),
    (
        "CONN-3/1",
        "at the session limit a connection gets `err 420 busy` and is closed",
        &["CONN-3", "CONN-6"],
        conn_3_busy,
    ),
    (
        "HELLO-7/1",
        "a put of exactly max-size is not refused with 513",
        &["HELLO-7", "PUT-2"],
        hello_7_max_size,
    ),
    (
        "HELLO-7/2",
        "an eager put of exactly max-eager is accepted",
        &["HELLO-7", "PUT-6", "PUT-4"],
        hello_7_max_eager,
    ),
    (
        "HELLO-8/1",
        "default limits (reported)",
        &["HELLO-8"],
        hello_8_defaults,
    ),
    (
        "FRAME-1/1",
        "every octet of a session in its own write",
        &["FRAME-1", "FRAME-6"],
        frame_1_octet_writes,
    ),
    (
        "FRAME-1/2",
        "put, payload and further requests in one write",
        &["FRAME-1", "PUT-4", "PIPE-1"],
        frame_1_one_write,
    ),
    (
        "FRAME-2/1",
        "a line of exactly 4096 octets, eol included, is not too long",
        &["FRAME-2", "ERR-6"],
        frame_2_exact_limit,
    ),
    (
        "FRAME-2/2",
        "4096 octets without LF: 501, close, nothing more read",
        &["FRAME-2", "ERR-5", "ERR-8"],
        frame_2_too_long,
    ),
    (
        "FRAME-3/1",
        "CR LF accepted on request and payload lines, and not part of the name",
        &["FRAME-3"],
        frame_3_crlf,
    ),
    (
        "FRAME-4/1",
        "a request line that is not UTF-8 is malformed (500), the session goes on",
        &["FRAME-4", "ERR-6"],
        frame_4_utf8,
    ),
    (
        "FRAME-5/1",
        "numbers with leading zeros, signs or above 2^64-1 are malformed",
        &["FRAME-5", "FRAME-7", "ERR-6"],
        frame_5_numbers,
    ),
    (
        "FRAME-7/1",
        "keyword and spacing variants are refused with 500",
        &["FRAME-7", "ERR-6"],
        frame_7_variants,
    ),
    (
        "ERR-6/1",
        "put lines not parsable up to the name: 502, then close",
        &["ERR-6", "ERR-5", "ERR-8"],
        err_6_put_malformed,
    ),
    (
        "ERR-6/2",
        "lines that only resemble put get 500 and the session goes on",
        &["ERR-6"],
        err_6_not_put,
    ),
    (
        "ERR-1/1",
        "error sweep: only codes of the table, connection usable after non-closing codes",
        &["ERR-1", "ERR-2", "ERR-5", "PIPE-5"],
        err_1_sweep,
    ),
    (
        "ERR-7/1",
        "error texts begin with the code's name",
        &["ERR-7"],
        err_7_text,
    ),
    (
        "NAME-7/1",
        "get with a name breaking each NAME rule: 510",
        &[
            "NAME-7", "NAME-1", "NAME-2", "NAME-3", "NAME-4", "NAME-5", "GET-1", "SEC-1", "SEC-2",
        ],
        name_7_get,
    ),
    (
        "NAME-7/2",
        "put wait with invalid names: 510 before any go",
        &["NAME-7", "PUT-2", "PUT-3"],
        name_7_put_wait,
    ),
    (
        "PUT-9/1",
        "eager put with an invalid name: payload discarded, then 510",
        &["PUT-9", "NAME-7"],
        put_9_bad_name,
    ),
    (
        "NAME-6/1",
        "names compare octet by octet (case-sensitive, no normalisation)",
        &["NAME-6", "NAME-5"],
        name_6_octets,
    ),
    (
        "GET-1/1",
        "valid names that do not exist: 511 (not 510)",
        &["GET-1", "NAME-2"],
        get_1_absent,
    ),
    (
        "DIR-2/1",
        "an upload in progress is neither listed nor readable",
        &["DIR-2", "PUT-10"],
        dir_2_in_progress,
    ),
    (
        "DIR-4/1",
        "listing: COUNT entries, bytewise order, sizes",
        &["DIR-1", "DIR-3", "DIR-4", "DIR-6"],
        dir_4_order,
    ),
    (
        "DIR-5/1",
        "MTIME is the commit time in UTC; ok get repeats it",
        &["DIR-5", "GET-2"],
        dir_5_mtime,
    ),
    (
        "GET-3/1",
        "get from offsets: tail octets, whole-file digest, chunking",
        &["GET-3", "GET-5", "SUM-3", "DATA-1", "DATA-2", "DATA-4"],
        get_3_offsets,
    ),
    (
        "GET-4/1",
        "OFFSET > SIZE: 515 and no payload; OFFSET = SIZE: trailer only",
        &["GET-4", "GET-5"],
        get_4_bad_offset,
    ),
    (
        "DATA-13/1",
        "large files go in large chunks",
        &["DATA-13"],
        data_13_chunks,
    ),
    (
        "SUM-1/1",
        "the digest test vectors of section 7.2, both directions",
        &["SUM-1", "PUT-18", "PUT-12", "PUT-4"],
        sum_1_vectors,
    ),
    (
        "PUT-11/1",
        "digest mismatch: 433, nothing visible, replaced file kept",
        &["PUT-11", "SUM-2", "PUT-10", "PUT-12"],
        put_11_mismatch,
    ),
    (
        "PUT-15/1",
        "client abort: 434, nothing visible, connection usable",
        &["PUT-15", "DATA-9", "ERR-4"],
        put_15_abort,
    ),
    (
        "PUT-16/1",
        "disconnect in the middle of an upload leaves nothing visible",
        &["PUT-16", "CLOSE-4", "PUT-10"],
        put_16_disconnect,
    ),
    (
        "PUT-12/1",
        "a replace is atomic for readers",
        &["PUT-12", "PUT-10"],
        put_12_atomic,
    ),
    (
        "PUT-13/1",
        "new never replaces a file created after its check",
        &["PUT-13"],
        put_13_race,
    ),
    (
        "PUT-2/1",
        "SIZE above max-size: 513 before any payload; checks in order",
        &["PUT-2", "PUT-3"],
        put_2_too_large,
    ),
    (
        "PUT-3/1",
        "wait put refused (exists): only err, next line is a new request",
        &["PUT-3", "PUT-2", "PUT-4"],
        put_3_refused_early,
    ),
    (
        "PUT-9/2",
        "eager put refused (exists): payload discarded, connection in sync",
        &["PUT-9", "PUT-2"],
        put_9_exists,
    ),
    (
        "PUT-8/1",
        "eager put above max-eager: 502 and close, payload not read",
        &["PUT-8", "ERR-5"],
        put_8_eager_too_large,
    ),
    (
        "PUT-8/3",
        "max-eager=0: every eager put, even of 0 octets, gets 502 and close; wait puts work",
        &["PUT-8", "ERR-5", "HELLO-7"],
        put_8_eager_disabled,
    ),
    (
        "PUT-19/1",
        "a failed upload is not resumed: the next put starts from scratch",
        &["PUT-19"],
        put_19_no_resume,
    ),
    (
        "DATA-5/1",
        "framing violations in an upload: 502, close, nothing visible",
        &["DATA-5", "DATA-6", "DATA-2", "PUT-16"],
        data_5_framing,
    ),
    (
        "PIPE-1/1",
        "50 pipelined requests in one write: replies in order",
        &["PIPE-1", "PIPE-5", "PIPE-7"],
        pipe_1_fifty,
    ),
    (
        "PIPE-1/2",
        "the effect of a put is complete before the next request",
        &["PIPE-1"],
        pipe_1_effects,
    ),
    (
        "PIPE-1/3",
        "3 MiB of pipelined eager puts in one write (more than a server buffers at once): \
         every one committed, replies in order",
        &["PIPE-1", "FRAME-1", "PUT-6"],
        pipe_1_stream,
    ),
    (
        "PIPE-1/4",
        "2 MiB of pipelined eager puts in 1-octet chunks (frame heads straddle every read): \
         every one committed, replies in order",
        &["PIPE-1", "FRAME-1", "DATA-2"],
        pipe_1_tiny_chunks,
    ),
    (
        "ERR-8/1",
        "nothing is executed after a closing error",
        &["ERR-8", "PIPE-7"],
        err_8_after_502,
    ),
    (
        "CLOSE-1/1",
        "close: bye, close, nothing after close executed",
        &["CLOSE-1", "PIPE-7"],
        close_1_nothing_after,
    ),
    (
        "CLOSE-4/1",
        "EOF without close: no bye, incomplete request discarded",
        &["CLOSE-4"],
        close_4_eof,
    ),
    (
        "CLOSE-5/1",
        "requests received before EOF are still answered",
        &["CLOSE-5"],
        close_5_half_close,
    ),
    (
        "CLOSE-6/1",
        "a closing error survives unread input",
        &["CLOSE-6"],
        close_6_linger,
    ),
    (
        "VER-5/1",
        "version: unsupported 503, not first 500, malformed 500",
        &["VER-1", "VER-4", "VER-5", "VER-6"],
        ver_5_versions,
    ),
    (
        "EXT-4/1",
        "an extension request that was not offered is refused, the session goes on",
        &["EXT-4"],
        ext_4_unlisted,
    ),
    (
        "SEC-10/1",
        "read-only server: 514 after the name check, nothing changes",
        &["SEC-10", "PUT-2", "PUT-9"],
        sec_10_read_only,
    ),
    (
        "TIME-1/1",
        "idle timeout: not before idle, then the session ends",
        &["TIME-1", "TIME-4", "TIME-5", "HELLO-7"],
        time_1_idle,
    ),
    (
        "TIME-2/1",
        "stall timeout inside a request line",
        &["TIME-2", "TIME-5", "HELLO-7"],
        time_2_line,
    ),
    (
        "TIME-2/2",
        "stall timeout inside an upload: session ends, nothing visible",
        &["TIME-2", "TIME-4", "PUT-16"],
        time_2_upload,
    ),
    (
        "TIME-3/1",
        "no idle timeout during a slow but progressing upload",
        &["TIME-3", "TIME-1"],
        time_3_slow_upload,
    ),
    (
        "TIME-2/5",
        "a download read in bursts with pauses shorter than stall completes",
        &["TIME-2", "TIME-3", "HELLO-7"],
        time_2_slow_reader,
    ),
    (
        "TIME-2/6",
        "a client that accepts no output for longer than stall is dropped, without `end`",
        &["TIME-2", "TIME-5"],
        time_2_stuck_reader,
    ),
];

// ------------------------------------------------------------------- helpers ---

/// `n` octets of a pattern that includes LF, CR, NUL and non-UTF-8 octets.
pub(super) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u64 * 31 + u64::from(seed) * 7) % 251) as u8)
        .collect()
}

/// Uploads `data` as `name` (replace, wait) in its own session.
fn upload(ctx: &Ctx<'_>, name: &[u8], data: &[u8]) -> Res<()> {
    let mut c = ctx.session()?;
    c.put_ok("PUT-12", name, PutMode::Replace, PutFlow::Wait, data)?;
    c.close()
}

/// The names of the case's prefix in a listing from a new session.
fn listed(ctx: &Ctx<'_>) -> Res<Vec<Vec<u8>>> {
    let mut c = ctx.session()?;
    let l = c.dir("DIR-1")?;
    let _ = c.close();
    Ok(l.into_iter()
        .map(|e| e.name.as_bytes().to_vec())
        .filter(|n| n.starts_with(ctx.prefix.as_bytes()))
        .collect())
}

/// Checks that `name` is neither listed nor readable.
fn invisible(ctx: &Ctx<'_>, req: &str, name: &[u8], why: &str) -> Res<()> {
    let names = listed(ctx)?;
    ensure(
        !names.iter().any(|n| n == name),
        req,
        format!("{} not listed ({why})", show(name)),
        || format!("{} is listed", show(name)),
    )?;
    let mut c = ctx.session()?;
    let r = c.get(req, 0, name)?;
    let _ = c.close();
    match r {
        GetReply::Err(e) if e.code == Code::NOT_FOUND => Ok(()),
        other => Err(violation(
            req,
            format!("err 511 for {} ({why})", show(name)),
            other.show(),
        )),
    }
}

fn expect_content(c: &mut Conn, req: &str, name: &[u8], want: &[u8]) -> Res<()> {
    let got = c.get_ok(req, name)?;
    ensure(
        got == want,
        req,
        format!(
            "{} octets of content {:?}",
            want.len(),
            show(&want[..want.len().min(24)])
        ),
        || format!("{} octets {:?}", got.len(), show(&got[..got.len().min(24)])),
    )
}

fn get_line(offset: u64, name: &[u8]) -> Vec<u8> {
    let mut l = format!("get {offset} ").into_bytes();
    l.extend_from_slice(name);
    l.push(b'\n');
    l
}

/// A wait put that gets `go`, then `head` of its payload; the connection is returned.
fn start_upload(ctx: &Ctx<'_>, name: &[u8], mode: PutMode, size: u64, head: &[u8]) -> Res<Conn> {
    let mut c = ctx.session()?;
    c.send("PUT-3", &put_line(size, mode, PutFlow::Wait, name))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    c.send("PUT-3", head)?;
    Ok(c)
}

pub(super) fn chunk(data: &[u8]) -> Vec<u8> {
    let mut v = format!("data {}\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v
}

pub(super) fn end(data: &[u8]) -> Vec<u8> {
    format!("end {}\n", Digest::of(data)).into_bytes()
}

// --------------------------------------------------------------------- cases ---

fn conn_4_greeting(ctx: &mut Ctx<'_>) -> Res<Done> {
    // Send nothing: the greeting must come unprompted (Conn::open reads and checks it).
    let (mut c, g) = ctx.open()?;
    c.expect_silence(
        "CONN-8",
        Duration::from_millis(300),
        "no request has been sent",
    )?;
    c.close()?;
    let l = g.limits();
    Ok(Done::PassWith(format!(
        "versions {:?}, max-size={} max-eager={} idle={} stall={}, ext={:?}",
        g.versions().iter().map(|v| v.get()).collect::<Vec<_>>(),
        l.max_size,
        l.max_eager,
        l.idle,
        l.stall,
        g.extensions()
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect::<Vec<_>>()
    )))
}

fn conn_7_independent(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut a = ctx.session()?;
    // A session that ends with a closing error.
    let mut b = ctx.session()?;
    b.send("ERR-6", b"put x\n")?;
    b.expect_err("ERR-6", 502)?;
    b.expect_closed("ERR-5", "err 502")?;
    // One that just disconnects.
    let mut d = ctx.session()?;
    d.send("CONN-7", b"di")?;
    drop(d);
    // Others still work, concurrently.
    let names: Vec<Vec<u8>> = (0..4).map(|i| ctx.name(&format!("s{i}"))).collect();
    let mut conns = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut c = ctx.session()?;
        c.send("CONN-7", &put_line(3, PutMode::New, PutFlow::Wait, n))?;
        conns.push((c, i, n));
    }
    for (c, i, n) in &mut conns {
        c.expect_reply("CONN-7", &Reply::Go)?;
        let data = pattern(3, *i as u8);
        let mut p = chunk(&data);
        p.extend(end(&data));
        c.send("CONN-7", &p)?;
        let _ = n;
    }
    for (c, i, _) in &mut conns {
        let data = pattern(3, *i as u8);
        c.expect_reply(
            "CONN-7",
            &Reply::PutOk {
                size: 3,
                digest: Digest::of(&data),
            },
        )?;
    }
    for (c, i, n) in conns {
        let mut c = c;
        expect_content(&mut c, "CONN-7", n, &pattern(3, i as u8))?;
        c.close()?;
    }
    a.dir("CONN-7")?;
    a.close()?;
    Ok(Done::Pass)
}

fn conn_3_busy(ctx: &mut Ctx<'_>) -> Res<Done> {
    let Some(limit) = ctx.target.session_limit else {
        return Err(unimplemented(
            "needs the main server's session limit (--session-limit N)",
        ));
    };
    if limit > 1024 {
        return Err(unimplemented(format!(
            "session limit {limit} is too high to reach (at most 1024)"
        )));
    }
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..limit + 5 {
        let mut c = ctx.connect()?;
        match c.line() {
            LineRead::Line(l) if l.starts_with(b"ferry/") => held.push(c),
            LineRead::Line(l) => {
                refused = Some((c, l));
                break;
            }
            LineRead::Eof(p) => {
                return Err(violation(
                    "CONN-3",
                    "err 420 busy, then close",
                    format!("closed without a reply {:?}", show(&p)),
                ));
            }
            LineRead::Timeout | LineRead::TooLong => {
                return Err(violation(
                    "CONN-4",
                    "a greeting or err 420 at once",
                    "nothing in time",
                ));
            }
        }
    }
    let Some((mut c, line)) = refused else {
        return Err(violation(
            "CONN-3",
            format!("a refusal once {limit} sessions are open"),
            format!("{} sessions were accepted", held.len()),
        ));
    };
    ensure(
        line.starts_with(b"err 420"),
        "CONN-3",
        "err 420 busy",
        || show(&line),
    )?;
    c.expect_closed("CONN-3", "err 420")?;
    drop(held);
    // Once the sessions are gone, connections are accepted again.
    let until = Instant::now() + Duration::from_secs(4);
    loop {
        let mut c = ctx.connect()?;
        match c.line() {
            LineRead::Line(l) if l.starts_with(b"ferry/") => return Ok(Done::Pass),
            _ if Instant::now() < until => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                return Err(violation(
                    "CONN-7",
                    "a greeting once the sessions ended",
                    "still refused",
                ));
            }
        }
    }
}

fn hello_7_max_size(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (mut c, g) = ctx.open()?;
    let max = g.limits().max_size;
    let name = ctx.name("max-size");
    c.send(
        "HELLO-7",
        &put_line(max, PutMode::New, PutFlow::Wait, &name),
    )?;
    match c.reply("HELLO-7", "go (or an error other than 513)")? {
        Reply::Go => {
            c.send("HELLO-7", b"abort 431 storage conformance probe\n")?;
            c.expect_err("PUT-15", 434)?;
            c.close()?;
            Ok(Done::Pass)
        }
        Reply::Err(e) if e.code == Code::TOO_LARGE => Err(violation(
            "HELLO-7",
            format!("no 513 for SIZE = max-size = {max}"),
            show_reply(&Reply::Err(e)),
        )),
        Reply::Err(e) => {
            c.close()?;
            Ok(Done::PassWith(format!(
                "answered {}",
                show_reply(&Reply::Err(e))
            )))
        }
        other => Err(violation("PUT-3", "go or err", show_reply(&other))),
    }
}

fn hello_7_max_eager(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (mut c, g) = ctx.open()?;
    let me = g.limits().max_eager;
    if me == 0 {
        return Err(unimplemented("max-eager is 0 (eager puts disabled)"));
    }
    if me > 16 << 20 {
        return Err(unimplemented(format!(
            "max-eager={me} is more than the runner sends (16 MiB)"
        )));
    }
    let data = pattern(me as usize, 3);
    c.put_ok(
        "HELLO-7",
        &ctx.name("eager-max"),
        PutMode::New,
        PutFlow::Now,
        &data,
    )?;
    c.close()?;
    Ok(Done::Pass)
}

fn hello_8_defaults(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (c, g) = ctx.open()?;
    c.close()?;
    let l = g.limits();
    let defaults =
        l.max_size == 1 << 40 && l.max_eager == 1 << 20 && l.idle == 300 && l.stall == 60;
    Ok(Done::Info(format!(
        "max-size={} max-eager={} idle={} stall={} ({})",
        l.max_size,
        l.max_eager,
        l.idle,
        l.stall,
        if defaults {
            "the defaults"
        } else {
            "configured values"
        }
    )))
}

fn frame_1_octet_writes(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let name = ctx.name("drip");
    let data = pattern(40, 1);
    let mut req = put_line(40, PutMode::New, PutFlow::Now, &name);
    req.extend(payload_of(&data));
    c.send_drip("FRAME-1", &req, 1, Duration::ZERO)?;
    c.expect_reply(
        "FRAME-1",
        &Reply::PutOk {
            size: 40,
            digest: Digest::of(&data),
        },
    )?;
    c.send_drip("FRAME-1", b"dir\n", 1, Duration::ZERO)?;
    let l = c.read_dir("FRAME-1")?;
    ensure(
        l.iter().any(|e| e.name.as_bytes() == name),
        "FRAME-1",
        "the listing shows the upload",
        || "it does not",
    )?;
    c.send_drip("FRAME-1", &get_line(7, &name), 1, Duration::ZERO)?;
    match c.read_get("FRAME-1", 7)? {
        GetReply::Ok { payload, .. } if payload.data == data[7..] => {}
        other => {
            return Err(violation(
                "FRAME-1",
                "ok get with octets 7..39",
                other.show(),
            ));
        }
    }
    c.send_drip("FRAME-1", b"close\n", 1, Duration::from_millis(2))?;
    c.expect_reply("CLOSE-1", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    Ok(Done::Pass)
}

fn frame_1_one_write(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let name = ctx.name("one-write");
    let data = pattern(1000, 2);
    let mut w = put_line(1000, PutMode::New, PutFlow::Now, &name);
    w.extend(payload_of(&data));
    w.extend(get_line(0, &name));
    w.extend(b"dir\nclose\n");
    c.send("FRAME-1", &w)?;
    c.expect_reply(
        "PUT-4",
        &Reply::PutOk {
            size: 1000,
            digest: Digest::of(&data),
        },
    )?;
    match c.read_get("FRAME-1", 0)? {
        GetReply::Ok { payload, .. } if payload.data == data => {}
        other => {
            return Err(violation(
                "PIPE-1",
                "ok get with the content just uploaded",
                other.show(),
            ));
        }
    }
    c.read_dir("FRAME-1")?;
    c.expect_reply("CLOSE-1", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    Ok(Done::Pass)
}

fn frame_2_exact_limit(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let mut line = vec![b'x'; 4095];
    line.push(b'\n');
    c.send("FRAME-2", &line)?;
    c.expect_err("FRAME-2", 500)?;
    let mut line = vec![b'y'; 4094];
    line.extend_from_slice(b"\r\n");
    c.send("FRAME-2", &line)?;
    c.expect_err("FRAME-2", 500)?;
    // A get line of exactly 4096 octets whose name is too long: 510, not 501.
    let mut line = b"get 0 ".to_vec();
    line.extend(vec![b'n'; 4096 - 7]);
    line.push(b'\n');
    c.send("FRAME-2", &line)?;
    c.expect_err("ERR-6", 510)?;
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

fn frame_2_too_long(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let mut w = vec![b'x'; 4096];
    w.extend_from_slice(b"\ndir\n");
    c.send("FRAME-2", &w)?;
    c.expect_err("FRAME-2", 501)?;
    c.expect_closed(
        "ERR-8",
        "err 501 (the dir after the long line must not be answered)",
    )?;
    // 4095 octets and CR, then LF: 4097 octets with the eol, too long as well.
    let mut c = ctx.session()?;
    let mut w = b"get 0 ".to_vec();
    w.extend(vec![b'z'; 4095 - 6]);
    w.extend_from_slice(b"\r\n");
    c.send("FRAME-2", &w)?;
    c.expect_err("FRAME-2", 501)?;
    c.expect_closed("ERR-5", "err 501")?;
    Ok(Done::Pass)
}

fn frame_3_crlf(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let name = ctx.name("crlf.txt");
    let data = b"a\r\nb";
    let mut w = put_line(4, PutMode::New, PutFlow::Now, &name);
    w.pop();
    w.extend_from_slice(b"\r\ndata 4\r\n");
    w.extend_from_slice(data);
    w.extend_from_slice(format!("end {}\r\n", Digest::of(data)).as_bytes());
    c.send("FRAME-3", &w)?;
    c.expect_reply(
        "FRAME-3",
        &Reply::PutOk {
            size: 4,
            digest: Digest::of(data),
        },
    )?;
    c.send("FRAME-3", b"dir\r\n")?;
    let l = c.read_dir("FRAME-3")?;
    ensure(
        l.iter().any(|e| e.name.as_bytes() == name),
        "FRAME-3",
        format!(
            "{} listed (the CR belongs to the eol, not the name)",
            show(&name)
        ),
        || "not listed",
    )?;
    let mut g = get_line(0, &name);
    g.pop();
    g.extend_from_slice(b"\r\n");
    c.send("FRAME-3", &g)?;
    match c.read_get("FRAME-3", 0)? {
        GetReply::Ok { payload, .. } if payload.data == data => {}
        other => {
            return Err(violation(
                "FRAME-3",
                "ok get with the content",
                other.show(),
            ));
        }
    }
    c.send("FRAME-3", b"close\r\n")?;
    c.expect_reply("FRAME-3", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    Ok(Done::Pass)
}

fn frame_4_utf8(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    for line in [
        &b"dir\xff\n"[..],
        b"\xc3\x28\n",
        b"clos\xc0\xa5\n",
        b"\xef\xbb\xbfdir\n",
    ] {
        c.send("FRAME-4", line)?;
        c.expect_err("FRAME-4", 500)
            .map_err(|s| with_line(s, line))?;
    }
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

/// Sends each line and expects `err CODE` for it, the session going on.
fn each_err(c: &mut Conn, req: &str, code: u16, lines: &[Vec<u8>]) -> Res<()> {
    for line in lines {
        c.send(req, line)?;
        match c.reply(req, &format!("err {code}"))? {
            Reply::Err(e) if e.code.get() == code => {}
            other => {
                return Err(violation(
                    req,
                    format!("err {code} for {:?}", show(line)),
                    show_reply(&other),
                ));
            }
        }
    }
    Ok(())
}

fn frame_5_numbers(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let n = String::from_utf8_lossy(&ctx.name("num")).into_owned();
    let bad: Vec<Vec<u8>> = [
        format!("get 00 {n}\n"),
        format!("get 01 {n}\n"),
        format!("get +1 {n}\n"),
        format!("get -0 {n}\n"),
        format!("get 18446744073709551616 {n}\n"),
        format!("get 99999999999999999999999 {n}\n"),
        "version 01\n".to_owned(),
        "version 0\n".to_owned(),
        "version 100000\n".to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    each_err(&mut c, "FRAME-5", 500, &bad)?;
    // The largest number is valid: the file does not exist.
    each_err(
        &mut c,
        "FRAME-5",
        511,
        &[format!("get 18446744073709551615 {n}\n").into_bytes()],
    )?;
    c.close()?;
    for line in [
        format!("put 05 new wait {n}\n"),
        format!("put 18446744073709551616 new wait {n}\n"),
    ] {
        let mut c = ctx.session()?;
        c.send("FRAME-5", line.as_bytes())?;
        c.expect_err("ERR-6", 502)
            .map_err(|s| with_line(s, line.as_bytes()))?;
        c.expect_closed("ERR-5", "err 502")?;
    }
    Ok(Done::Pass)
}

fn with_line(s: crate::case::Stop, line: &[u8]) -> crate::case::Stop {
    match s {
        crate::case::Stop::Violation(mut v) => {
            v.expected = format!("{} for {:?}", v.expected, show(line));
            crate::case::Stop::Violation(v)
        }
        other => other,
    }
}

fn frame_7_variants(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let n = String::from_utf8_lossy(&ctx.name("v")).into_owned();
    let bad: Vec<Vec<u8>> = [
        "DIR\n".to_owned(),
        "Dir\n".to_owned(),
        "dir \n".to_owned(),
        " dir\n".to_owned(),
        "dir\t\n".to_owned(),
        format!("GET 0 {n}\n"),
        format!("get  0 {n}\n"),
        format!("get\t0 {n}\n"),
        format!("get 0\t{n}\n"),
        "close now\n".to_owned(),
        "CLOSE\n".to_owned(),
        "version  1\n".to_owned(),
        "VERSION 1\n".to_owned(),
        "\n".to_owned(),
        "\r\n".to_owned(),
        "ok dir 0\n".to_owned(),
        "bye\n".to_owned(),
        "data 5\n".to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    each_err(&mut c, "FRAME-7", 500, &bad)?;
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

fn err_6_put_malformed(ctx: &mut Ctx<'_>) -> Res<Done> {
    let n = String::from_utf8_lossy(&ctx.name("p")).into_owned();
    let lines = [
        "put\n".to_owned(),
        "put \n".to_owned(),
        "put 5\n".to_owned(),
        "put 5 new\n".to_owned(),
        "put 5 new wait\n".to_owned(),
        format!("put 5 NEW wait {n}\n"),
        format!("put 5 new later {n}\n"),
        format!("put x new wait {n}\n"),
        format!("put 5  new wait {n}\n"),
        format!("put 5 new now\t{n}\n"),
        format!("put -5 new now {n}\n"),
    ];
    for line in lines {
        let mut c = ctx.session()?;
        let mut w = line.clone().into_bytes();
        w.extend_from_slice(b"dir\n");
        c.send("ERR-6", &w)?;
        c.expect_err("ERR-6", 502)
            .map_err(|s| with_line(s, line.as_bytes()))?;
        c.expect_closed(
            "ERR-8",
            &format!(
                "err 502 for {:?} (the dir after it must not be answered)",
                line.trim_end()
            ),
        )?;
    }
    Ok(Done::Pass)
}

fn err_6_not_put(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let bad: Vec<Vec<u8>> = [
        "putx 5 new wait x\n",
        "Put 5 new wait x\n",
        "puts\n",
        "PUT 5 new wait x\n",
        "gett 0 x\n",
        "get\n",
        "get 0\n",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    each_err(&mut c, "ERR-6", 500, &bad)?;
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

/// Provokes every error the runner can: (request octets, expected code).
fn sweep(ctx: &Ctx<'_>) -> Res<Vec<(Vec<u8>, u16, Reply)>> {
    let existing = ctx.name("sweep");
    upload(ctx, &existing, b"hello")?;
    let missing = ctx.name("sweep-missing");
    let mut corrupt = put_line(5, PutMode::New, PutFlow::Now, &ctx.name("sweep-corrupt"));
    corrupt.extend(chunk(b"hellO"));
    corrupt.extend(end(b"hello"));
    let mut aborted = put_line(5, PutMode::New, PutFlow::Now, &ctx.name("sweep-abort"));
    aborted.extend(chunk(b"he"));
    aborted.extend_from_slice(b"abort 430 changed\n");
    let mut exists = put_line(2, PutMode::New, PutFlow::Now, &existing);
    exists.extend(payload_of(b"hi"));
    let probes: Vec<(Vec<u8>, u16)> = vec![
        (b"bogus\n".to_vec(), 500),
        (b"get 0 ../x\n".to_vec(), 510),
        (get_line(0, &missing), 511),
        (get_line(6, &existing), 515),
        (exists, 512),
        (corrupt, 433),
        (aborted, 434),
        (b"version 1\n".to_vec(), 500),
    ];
    let mut c = ctx.session()?;
    let mut out = Vec::new();
    for (bytes, code) in probes {
        c.send("ERR-5", &bytes)?;
        let r = c.reply("ERR-5", &format!("err {code}"))?;
        out.push((bytes, code, r));
    }
    c.dir("ERR-5")?;
    c.close()?;
    Ok(out)
}

fn err_1_sweep(ctx: &mut Ctx<'_>) -> Res<Done> {
    for (bytes, code, r) in sweep(ctx)? {
        match &r {
            Reply::Err(e) if e.code.get() == code => {}
            other => {
                return Err(violation(
                    "ERR-1",
                    format!("err {code} for {:?}", show(&bytes[..bytes.len().min(60)])),
                    show_reply(other),
                ));
            }
        }
    }
    Ok(Done::Pass)
}

fn err_7_text(ctx: &mut Ctx<'_>) -> Res<Done> {
    for (_, _, r) in sweep(ctx)? {
        if let Reply::Err(e) = &r {
            let name = e.code.name().unwrap_or("");
            let ok = e
                .text
                .as_ref()
                .is_some_and(|t| t.as_str().starts_with(name));
            ensure(ok, "ERR-7", format!("err {} {name}…", e.code), || {
                show_reply(&r)
            })?;
        }
    }
    Ok(Done::Pass)
}

/// Invalid names, each with the rule it breaks.
fn invalid_names() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("NAME-2 empty", b"".to_vec()),
        ("NAME-2 256 octets", vec![b'n'; 256]),
        (
            "NAME-2 258 octets in 86 characters",
            "天".repeat(86).into_bytes(),
        ),
        ("NAME-1 not UTF-8", b"\xff\xfe.txt".to_vec()),
        ("NAME-1 overlong encoding", b"\xc0\xae\xc0\xae".to_vec()),
        ("NAME-1 surrogate", b"a\xed\xa0\x80".to_vec()),
        ("NAME-1 truncated sequence", b"a\xe5\xa4".to_vec()),
        ("NAME-3 U+0001", b"a\x01b".to_vec()),
        ("NAME-3 TAB", b"a\tb".to_vec()),
        ("NAME-3 DEL", b"a\x7fb".to_vec()),
        ("NAME-3 U+0085", b"a\xc2\x85b".to_vec()),
        ("NAME-3 CR inside", b"a\rb".to_vec()),
        ("NAME-3 slash", b"a/b".to_vec()),
        ("NAME-3 traversal", b"../x".to_vec()),
        ("NAME-3 absolute path", b"/etc/passwd".to_vec()),
        ("NAME-3 backslash", b"a\\b".to_vec()),
        ("NAME-3 backslash traversal", b"..\\x".to_vec()),
        ("NAME-4 dot", b".".to_vec()),
        ("NAME-4 dot dot", b"..".to_vec()),
        ("NAME-4 hidden", b".hidden".to_vec()),
        ("NAME-4 staging area", b".ferry-staging".to_vec()),
        ("NAME-4 leading space", b" lead".to_vec()),
        ("NAME-4 trailing space", b"trail ".to_vec()),
        ("NAME-4 only a space", b" ".to_vec()),
        ("NAME-5 e + U+0301", "cafe\u{301}.txt".as_bytes().to_vec()),
        (
            "NAME-5 U+212B ANGSTROM SIGN",
            "\u{212b}".as_bytes().to_vec(),
        ),
        (
            "NAME-5 decomposed Hangul",
            "\u{1100}\u{1161}".as_bytes().to_vec(),
        ),
    ]
}

fn name_7_get(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    for (rule, name) in invalid_names() {
        c.send("NAME-7", &get_line(0, &name))?;
        match c.reply("NAME-7", "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    "NAME-7",
                    format!("err 510 for get of {:?} ({rule})", show(&name)),
                    show_reply(&other),
                ));
            }
        }
    }
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

fn name_7_put_wait(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    for (rule, name) in invalid_names() {
        c.send("NAME-7", &put_line(3, PutMode::New, PutFlow::Wait, &name))?;
        match c.reply("NAME-7", "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    "NAME-7",
                    format!("err 510 for put wait of {:?} ({rule}), no go", show(&name)),
                    show_reply(&other),
                ));
            }
        }
    }
    c.dir("PUT-3")?;
    c.close()?;
    Ok(Done::Pass)
}

fn put_9_bad_name(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let mut w = Vec::new();
    let names = invalid_names();
    for (_, name) in &names {
        w.extend(put_line(5, PutMode::New, PutFlow::Now, name));
        w.extend(payload_of(b"dir\n\n"));
    }
    w.extend_from_slice(b"dir\n");
    c.send("PUT-9", &w)?;
    for (rule, name) in &names {
        match c.reply("PUT-9", "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    "PUT-9",
                    format!(
                        "err 510 for the eager put of {:?} ({rule}) after its payload",
                        show(name)
                    ),
                    show_reply(&other),
                ));
            }
        }
    }
    c.read_dir("PUT-9")?;
    c.close()?;
    Ok(Done::Pass)
}

fn name_6_octets(ctx: &mut Ctx<'_>) -> Res<Done> {
    let files: [(&str, &[u8]); 4] = [
        ("Case.txt", b"upper"),
        ("case.txt", b"lower"),
        ("\u{e9}", b"nfc"),
        ("e", b"plain"),
    ];
    let mut c = ctx.session()?;
    for (n, data) in files {
        c.put_ok("NAME-6", &ctx.name(n), PutMode::New, PutFlow::Now, data)?;
    }
    for (n, data) in files {
        expect_content(&mut c, "NAME-6", &ctx.name(n), data)?;
    }
    for n in ["CASE.TXT", "case.TXT", "\u{c9}"] {
        match c.get("NAME-6", 0, &ctx.name(n))? {
            GetReply::Err(e) if e.code == Code::NOT_FOUND => {}
            other => {
                return Err(violation(
                    "NAME-6",
                    format!("err 511 for {n:?} (names are case-sensitive)"),
                    other.show(),
                ));
            }
        }
    }
    c.close()?;
    let names = listed(ctx)?;
    ensure(
        names.len() == 4,
        "NAME-6",
        "4 distinct files listed",
        || format!("{} listed", names.len()),
    )?;
    Ok(Done::Pass)
}

fn get_1_absent(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let p = ctx.prefix.clone();
    let mut names: Vec<Vec<u8>> = [
        "missing",
        "x.",
        "~",
        "a b",
        "a.b.c",
        "a..b",
        "e\u{301}", /* not NFC: skip below */
        "天线",
        "my report (final).pdf",
        "😀",
    ]
    .iter()
    .filter(|n| !n.contains('\u{301}'))
    .map(|n| format!("{p}{n}").into_bytes())
    .collect();
    // Exactly 255 octets.
    let mut long = p.clone().into_bytes();
    long.resize(255, b'l');
    names.push(long);
    let mut long_cjk = p.into_bytes();
    while long_cjk.len() + 3 <= 255 {
        long_cjk.extend_from_slice("天".as_bytes());
    }
    names.push(long_cjk);
    for n in names {
        match c.get("GET-1", 0, &n)? {
            GetReply::Err(e) if e.code == Code::NOT_FOUND => {}
            other => {
                return Err(violation(
                    "GET-1",
                    format!(
                        "err 511 for the valid, absent name {:?} ({} octets)",
                        show(&n),
                        n.len()
                    ),
                    other.show(),
                ));
            }
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn dir_2_in_progress(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("in-progress");
    let data = pattern(10, 4);
    let mut a = start_upload(ctx, &name, PutMode::New, 10, &chunk(&data[..4]))?;
    invisible(ctx, "DIR-2", &name, "its upload is not complete")?;
    let mut rest = chunk(&data[4..]);
    rest.extend(end(&data));
    a.send("PUT-12", &rest)?;
    a.expect_reply(
        "PUT-12",
        &Reply::PutOk {
            size: 10,
            digest: Digest::of(&data),
        },
    )?;
    a.close()?;
    let mut c = ctx.session()?;
    expect_content(&mut c, "PUT-12", &name, &data)?;
    c.close()?;
    Ok(Done::Pass)
}

fn dir_4_order(ctx: &mut Ctx<'_>) -> Res<Done> {
    let bases = [
        "B",
        "a",
        "Z",
        "\u{e9}",
        "天",
        "~",
        "ab",
        "a b",
        "0",
        "a-",
        "A",
        "é\u{301}x", /* not NFC: dropped */
        "射",
    ];
    let bases: Vec<&str> = bases
        .iter()
        .copied()
        .filter(|b| !b.contains('\u{301}'))
        .collect();
    let mut c = ctx.session()?;
    let mut w = Vec::new();
    for (i, b) in bases.iter().enumerate() {
        w.extend(put_line(i as u64, PutMode::New, PutFlow::Now, &ctx.name(b)));
        w.extend(payload_of(&pattern(i, 9)));
    }
    c.send("DIR-4", &w)?;
    for (i, _) in bases.iter().enumerate() {
        c.expect_reply(
            "PUT-12",
            &Reply::PutOk {
                size: i as u64,
                digest: Digest::of(&pattern(i, 9)),
            },
        )?;
    }
    let l = c.dir("DIR-1")?;
    c.close()?;
    let mine: Vec<(Vec<u8>, u64)> = l
        .iter()
        .filter(|e| e.name.as_bytes().starts_with(ctx.prefix.as_bytes()))
        .map(|e| (e.name.as_bytes().to_vec(), e.size))
        .collect();
    let mut want: Vec<(Vec<u8>, u64)> = bases
        .iter()
        .enumerate()
        .map(|(i, b)| (ctx.name(b), i as u64))
        .collect();
    want.sort();
    let fmt = |v: &[(Vec<u8>, u64)]| {
        v.iter()
            .map(|(n, s)| format!("{s} {}", show(&n[ctx.prefix.len()..])))
            .collect::<Vec<_>>()
            .join(", ")
    };
    ensure(mine == want, "DIR-4", format!("[{}]", fmt(&want)), || {
        format!("[{}]", fmt(&mine))
    })?;
    Ok(Done::Pass)
}

fn dir_5_mtime(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("mtime");
    let before = Timestamp::from_system_time(SystemTime::now());
    let mut c = ctx.session()?;
    c.put_ok("PUT-12", &name, PutMode::New, PutFlow::Wait, b"t")?;
    let after_t = Timestamp::from_system_time(SystemTime::now());
    let l = c.dir("DIR-1")?;
    let e = l
        .iter()
        .find(|e| e.name.as_bytes() == name)
        .ok_or_else(|| violation("DIR-2", "the upload is listed", "it is not"))?;
    let skew = 600;
    ensure(
        e.mtime.unix() >= before.unix() - skew && e.mtime.unix() <= after_t.unix() + skew,
        "DIR-5",
        format!(
            "the commit time, between {before} and {after_t} (allowing {skew} s of clock difference)"
        ),
        || e.mtime.to_string(),
    )?;
    let mtime = e.mtime;
    c.send("GET-2", &get_line(0, &name))?;
    match c.reply("GET-2", "ok get 1 MTIME")? {
        Reply::GetOk { size, mtime: m } => {
            ensure(
                size == 1 && m == mtime,
                "GET-2",
                format!("ok get 1 {mtime} (as listed)"),
                || format!("ok get {size} {m}"),
            )?;
            c.payload(Some(1))?;
        }
        other => return Err(violation("GET-2", "ok get 1 MTIME", show_reply(&other))),
    }
    c.close()?;
    Ok(Done::Pass)
}

fn get_3_offsets(ctx: &mut Ctx<'_>) -> Res<Done> {
    let size = 2 * 1_048_576 + 3;
    let data = pattern(size, 5);
    let name = ctx.name("big.bin");
    upload(ctx, &name, &data)?;
    let digest = Digest::of(&data);
    let mut c = ctx.session()?;
    for off in [0, 1, 1_048_575, 1_048_576, size - 1, size] {
        match c.get("GET-3", off as u64, &name)? {
            GetReply::Ok {
                size: s, payload, ..
            } => {
                ensure(s == size as u64, "GET-2", format!("ok get {size}"), || {
                    format!("ok get {s}")
                })?;
                ensure(
                    payload.data == data[off..],
                    "GET-3",
                    format!("octets {off}..{} of the file", size - 1),
                    || format!("{} octets that differ", payload.data.len()),
                )?;
                ensure(
                    payload.trailer == Trailer::End(digest),
                    "GET-5",
                    format!("end {digest} (whole file)"),
                    || payload.trailer.show(),
                )?;
            }
            GetReply::Err(e) => {
                return Err(violation(
                    "GET-3",
                    format!("ok get for offset {off}"),
                    show_reply(&Reply::Err(e)),
                ));
            }
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn get_4_bad_offset(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("five");
    upload(ctx, &name, b"hello")?;
    let mut c = ctx.session()?;
    for off in [6, 7, u64::MAX] {
        match c.get("GET-4", off, &name)? {
            GetReply::Err(e) if e.code == Code::BAD_OFFSET => {}
            other => {
                return Err(violation(
                    "GET-4",
                    format!("err 515 for offset {off} > 5"),
                    other.show(),
                ));
            }
        }
    }
    match c.get("GET-5", 5, &name)? {
        GetReply::Ok {
            size: 5, payload, ..
        } if payload.chunks.is_empty() && payload.trailer == Trailer::End(Digest::of(b"hello")) => {
        }
        other => {
            return Err(violation(
                "GET-5",
                format!("ok get 5, no chunk, end {}", Digest::of(b"hello")),
                other.show(),
            ));
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn data_13_chunks(ctx: &mut Ctx<'_>) -> Res<Done> {
    let size = 3 * 1_048_576;
    let data = pattern(size, 6);
    let name = ctx.name("chunks.bin");
    upload(ctx, &name, &data)?;
    let mut c = ctx.session()?;
    let r = c.get("GET-5", 0, &name)?;
    c.close()?;
    let GetReply::Ok { payload, .. } = r else {
        return Err(violation("GET-5", "ok get", r.show()));
    };
    let n = payload.chunks.len();
    let small = payload.chunks[..n.saturating_sub(1)]
        .iter()
        .filter(|&&l| l < 65536)
        .count();
    ensure(
        small == 0,
        "DATA-13",
        "chunks of at least 64 KiB for a 3 MiB file (but the last)",
        || format!("{n} chunks, {small} smaller than 64 KiB"),
    )?;
    Ok(Done::PassWith(format!("{n} chunks")))
}

fn sum_1_vectors(ctx: &mut Ctx<'_>) -> Res<Done> {
    let vectors: [(Vec<u8>, &str); 4] = [
        (Vec::new(), "xxh3-128:99aa06d3014798d86001c324468d497f"),
        (
            b"hello".to_vec(),
            "xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818",
        ),
        (
            (0..1000u32).map(|i| (i % 251) as u8).collect(),
            "xxh3-128:18bf41bc8229e27733ef703fb2b20ed1",
        ),
        (
            (0..1_048_577u32).map(|i| (i % 251) as u8).collect(),
            "xxh3-128:3db0e7620b0d635947a84c196fd973df",
        ),
    ];
    let mut c = ctx.session()?;
    for (i, (data, digest)) in vectors.iter().enumerate() {
        let name = ctx.name(&format!("vector{i}"));
        let flow = if i % 2 == 1 && data.len() <= 1 << 20 {
            PutFlow::Now
        } else {
            PutFlow::Wait
        };
        let r = c.put("PUT-12", &name, PutMode::New, flow, data)?;
        let want = format!("ok put {} {digest}", data.len());
        ensure(show_reply(&r) == want, "PUT-18", want.clone(), || {
            show_reply(&r)
        })?;
        match c.get("SUM-1", 0, &name)? {
            GetReply::Ok { payload, .. } => {
                ensure(
                    payload.trailer.show() == format!("end {digest}"),
                    "SUM-1",
                    format!("end {digest}"),
                    || payload.trailer.show(),
                )?;
                ensure(
                    &payload.data == data,
                    "GET-5",
                    "the content uploaded",
                    || "other octets",
                )?;
            }
            other => return Err(violation("GET-1", "ok get", other.show())),
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn put_11_mismatch(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let a = ctx.name("corrupt-new");
    c.send("PUT-11", &put_line(5, PutMode::New, PutFlow::Wait, &a))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    let mut p = chunk(b"hellO");
    p.extend(end(b"hello"));
    c.send("PUT-11", &p)?;
    c.expect_err("PUT-11", 433)?;
    // Eager, on the same connection.
    let b = ctx.name("corrupt-now");
    let mut w = put_line(5, PutMode::New, PutFlow::Now, &b);
    w.extend(chunk(b"world"));
    w.extend(end(b"World"));
    c.send("PUT-11", &w)?;
    c.expect_err("PUT-11", 433)?;
    // Replace with a corrupt upload keeps the old file.
    let r = ctx.name("corrupt-replace");
    c.put_ok("PUT-12", &r, PutMode::New, PutFlow::Wait, b"old content")?;
    c.send("PUT-11", &put_line(11, PutMode::Replace, PutFlow::Wait, &r))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    let mut p = chunk(b"new content");
    p.extend(end(b"new-content"));
    c.send("PUT-11", &p)?;
    c.expect_err("PUT-11", 433)?;
    expect_content(&mut c, "PUT-12", &r, b"old content")?;
    c.close()?;
    invisible(ctx, "PUT-11", &a, "its digest did not match")?;
    invisible(ctx, "PUT-11", &b, "its digest did not match")?;
    Ok(Done::Pass)
}

fn put_15_abort(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let a = ctx.name("abort-mid");
    c.send("PUT-15", &put_line(10, PutMode::New, PutFlow::Wait, &a))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    let mut p = chunk(b"abc");
    p.extend_from_slice(b"abort 431 storage local read error\n");
    c.send("PUT-15", &p)?;
    c.expect_err("PUT-15", 434)?;
    let b = ctx.name("abort-first");
    c.send("PUT-15", &put_line(10, PutMode::New, PutFlow::Wait, &b))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    // The text looks like a trailer: it must not be interpreted (ERR-4).
    c.send(
        "PUT-15",
        format!("abort 430 end {}\n", Digest::of(b"")).as_bytes(),
    )?;
    c.expect_err("PUT-15", 434)?;
    let d = ctx.name("abort-now");
    let mut w = put_line(6, PutMode::New, PutFlow::Now, &d);
    w.extend(chunk(b"abcdef"));
    w.extend_from_slice(b"abort 430\n");
    c.send("PUT-15", &w)?;
    c.expect_err("PUT-15", 434)?;
    c.dir("DATA-9")?;
    c.close()?;
    for n in [&a, &b, &d] {
        invisible(ctx, "PUT-15", n, "its upload was aborted")?;
    }
    Ok(Done::Pass)
}

fn put_16_disconnect(ctx: &mut Ctx<'_>) -> Res<Done> {
    let a = ctx.name("cut-wait");
    let c = start_upload(ctx, &a, PutMode::New, 10, &chunk(b"abcd"))?;
    drop(c);
    let b = ctx.name("cut-now");
    let mut c = ctx.session()?;
    let mut w = put_line(10, PutMode::New, PutFlow::Now, &b);
    w.extend(chunk(b"abcd"));
    c.send("PUT-16", &w)?;
    c.shutdown_write();
    c.expect_closed(
        "CLOSE-4",
        "EOF in the middle of an upload (no bye, no reply)",
    )?;
    let r = ctx.name("cut-replace");
    upload(ctx, &r, b"old")?;
    let c = start_upload(ctx, &r, PutMode::Replace, 6, &chunk(b"new"))?;
    drop(c);
    std::thread::sleep(Duration::from_millis(100));
    invisible(
        ctx,
        "PUT-16",
        &a,
        "the client disconnected in the middle of its upload",
    )?;
    invisible(
        ctx,
        "PUT-16",
        &b,
        "the client disconnected in the middle of its upload",
    )?;
    let mut c = ctx.session()?;
    expect_content(&mut c, "PUT-16", &r, b"old")?;
    c.close()?;
    Ok(Done::Pass)
}

fn put_12_atomic(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("atomic");
    let old = pattern(100_000, 7);
    let new = pattern(200_000, 8);
    upload(ctx, &name, &old)?;
    let mut a = start_upload(
        ctx,
        &name,
        PutMode::Replace,
        new.len() as u64,
        &chunk(&new[..100_000]),
    )?;
    let mut b = ctx.session()?;
    let got = b.get_ok("PUT-12", &name)?;
    ensure(
        got == old,
        "PUT-12",
        "the previous file, complete, while the replace is in progress",
        || format!("{} octets", got.len()),
    )?;
    let mut rest = chunk(&new[100_000..]);
    rest.extend(end(&new));
    a.send("PUT-12", &rest)?;
    a.expect_reply(
        "PUT-12",
        &Reply::PutOk {
            size: new.len() as u64,
            digest: Digest::of(&new),
        },
    )?;
    a.close()?;
    let got = b.get_ok("PUT-12", &name)?;
    ensure(
        got == new,
        "PUT-12",
        "the new file once ok put was sent",
        || format!("{} octets", got.len()),
    )?;
    b.close()?;
    Ok(Done::Pass)
}

fn put_13_race(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("race");
    let mut a = start_upload(ctx, &name, PutMode::New, 1, b"")?;
    let mut b = ctx.session()?;
    b.put_ok("PUT-13", &name, PutMode::New, PutFlow::Now, b"B")?;
    let mut p = chunk(b"A");
    p.extend(end(b"A"));
    a.send("PUT-13", &p)?;
    a.expect_err("PUT-13", 512)?;
    a.close()?;
    expect_content(&mut b, "PUT-13", &name, b"B")?;
    b.close()?;
    Ok(Done::Pass)
}

fn put_2_too_large(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (mut c, g) = ctx.open()?;
    let max = g.limits().max_size;
    if max == u64::MAX {
        return Err(unimplemented("max-size is 2^64-1: no SIZE is above it"));
    }
    let existing = ctx.name("exists");
    c.put_ok("PUT-12", &existing, PutMode::New, PutFlow::Wait, b"x")?;
    let cases: [(Vec<u8>, u16, &str); 3] = [
        (ctx.name("huge"), 513, "SIZE > max-size"),
        (
            existing.clone(),
            513,
            "SIZE > max-size for an existing name (513 is checked before 512)",
        ),
        (
            b".huge".to_vec(),
            510,
            "an invalid name (510 is checked first)",
        ),
    ];
    for (name, code, why) in cases {
        c.send(
            "PUT-2",
            &put_line(max + 1, PutMode::New, PutFlow::Wait, &name),
        )?;
        match c.reply("PUT-2", &format!("err {code}"))? {
            Reply::Err(e) if e.code.get() == code => {}
            other => {
                return Err(violation(
                    "PUT-2",
                    format!("err {code} for {why}, before any payload"),
                    show_reply(&other),
                ));
            }
        }
    }
    c.dir("PUT-3")?;
    c.close()?;
    Ok(Done::Pass)
}

fn put_3_refused_early(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("taken");
    upload(ctx, &name, b"first")?;
    let mut c = ctx.session()?;
    c.send("PUT-3", &put_line(5, PutMode::New, PutFlow::Wait, &name))?;
    c.expect_err("PUT-2", 512)?;
    // The next line is a new request, not payload.
    c.dir("PUT-3")?;
    expect_content(&mut c, "PUT-3", &name, b"first")?;
    c.close()?;
    Ok(Done::Pass)
}

fn put_9_exists(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("taken-now");
    upload(ctx, &name, b"first")?;
    let mut c = ctx.session()?;
    let mut w = put_line(12, PutMode::New, PutFlow::Now, &name);
    w.extend(payload_of(b"dir\nget 0 x\n"));
    w.extend(get_line(0, &name));
    c.send("PUT-9", &w)?;
    c.expect_err("PUT-2", 512)?;
    match c.read_get("PUT-9", 0)? {
        GetReply::Ok { payload, .. } if payload.data == b"first" => {}
        other => {
            return Err(violation(
                "PUT-9",
                "the refused payload discarded, then ok get of the old content",
                other.show(),
            ));
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn put_8_eager_too_large(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (mut c, g) = ctx.open()?;
    let me = g.limits().max_eager;
    if me == u64::MAX {
        return Err(unimplemented("max-eager is 2^64-1"));
    }
    // Only the line: a server that waited for the payload would never answer.
    c.send(
        "PUT-8",
        &put_line(me + 1, PutMode::New, PutFlow::Now, &ctx.name("eager-big")),
    )?;
    c.expect_err("PUT-8", 502)?;
    c.expect_closed("PUT-8", "err 502")?;
    if me == 0 {
        let mut c = ctx.session()?;
        c.send(
            "PUT-8",
            &put_line(0, PutMode::New, PutFlow::Now, &ctx.name("eager-0")),
        )?;
        c.expect_err("PUT-8", 502)?;
        c.expect_closed("PUT-8", "err 502")?;
    }
    Ok(Done::Pass)
}

fn put_8_eager_disabled(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, _) = ctx.server_with("max-eager=0", |l| l.max_eager == 0)?;
    let open = || Conn::open(addr, ctx.deadline()).map(|(c, _)| c);
    for size in [0u64, 1] {
        let mut c = open()?;
        let name = ctx.name(&format!("no-eager-{size}"));
        let mut w = put_line(size, PutMode::New, PutFlow::Now, &name);
        w.extend(payload_of(&b"x"[..size as usize]));
        c.send("PUT-8", &w)?;
        c.expect_err("PUT-8", 502)?;
        c.expect_closed("ERR-5", "err 502")?;
    }
    let mut c = open()?;
    c.put_ok(
        "PUT-3",
        &ctx.name("wait-ok"),
        PutMode::New,
        PutFlow::Wait,
        b"waited",
    )?;
    c.close()?;
    Ok(Done::Pass)
}

fn put_19_no_resume(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("restart");
    let mut c = start_upload(ctx, &name, PutMode::New, 10, &chunk(b"0123"))?;
    c.send("PUT-15", b"abort 431 storage\n")?;
    c.expect_err("PUT-15", 434)?;
    c.put_ok("PUT-19", &name, PutMode::New, PutFlow::Wait, b"abcdefghij")?;
    expect_content(&mut c, "PUT-19", &name, b"abcdefghij")?;
    c.close()?;
    Ok(Done::Pass)
}

fn data_5_framing(ctx: &mut Ctx<'_>) -> Res<Done> {
    let long = {
        let mut v = vec![b'd'; 4096];
        v.push(b'\n');
        v
    };
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("data 0", b"data 0\n".to_vec()),
        ("data 1048577", b"data 1048577\n".to_vec()),
        (
            "a chunk past SIZE",
            [&b"data 6\nabcdef"[..], &end(b"abcdef")].concat(),
        ),
        (
            "end before SIZE octets",
            [&b"data 2\nab"[..], &end(b"ab")].concat(),
        ),
        ("a line that is no frame", b"hello\n".to_vec()),
        ("DATA 5", b"DATA 5\nabcde".to_vec()),
        ("data 05", b"data 05\nabcde".to_vec()),
        ("data with two spaces", b"data  5\nabcde".to_vec()),
        (
            "end with a bad digest",
            b"data 5\nabcdeend xxh3-128:XYZ\n".to_vec(),
        ),
        ("a request line in the payload", b"dir\n".to_vec()),
        ("an over-long line", long),
    ];
    let mut names = Vec::new();
    for (i, (what, bytes)) in variants.iter().enumerate() {
        let name = ctx.name(&format!("framing{i}"));
        let mut c = start_upload(ctx, &name, PutMode::New, 5, b"")?;
        let _ = c.send_lenient(bytes);
        match c.reply("DATA-6", "err 502") {
            Ok(Reply::Err(e)) if e.code == Code::PROTOCOL => {}
            // FRAME-2: inside an upload an over-long line is a framing violation (502), not
            // the 501 of a request line.
            Ok(other) => {
                return Err(violation(
                    "DATA-6",
                    format!("err 502 for {what}"),
                    show_reply(&other),
                ));
            }
            Err(s) => return Err(with_line(s, what.as_bytes())),
        }
        c.expect_closed("DATA-6", &format!("err 502 for {what}"))?;
        names.push(name);
    }
    let listed = listed(ctx)?;
    if let Some(n) = names.iter().find(|n| listed.contains(n)) {
        return Err(violation(
            "PUT-16",
            "nothing visible after a broken upload",
            format!("{} is listed", show(n)),
        ));
    }
    Ok(Done::Pass)
}

fn pipe_1_fifty(ctx: &mut Ctx<'_>) -> Res<Done> {
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|i| (ctx.name(&format!("f{i}")), pattern(10 + i * 7, i as u8)))
        .collect();
    {
        let mut c = ctx.session()?;
        let mut w = Vec::new();
        for (n, d) in &files {
            w.extend(put_line(d.len() as u64, PutMode::New, PutFlow::Now, n));
            w.extend(payload_of(d));
        }
        c.send("PIPE-1", &w)?;
        for (_, d) in &files {
            c.expect_reply(
                "PUT-12",
                &Reply::PutOk {
                    size: d.len() as u64,
                    digest: Digest::of(d),
                },
            )?;
        }
        c.close()?;
    }
    #[derive(Clone)]
    enum Want {
        Get(Vec<u8>),
        Dir,
        Err(u16),
        Put(Vec<u8>),
    }
    let mut w = Vec::new();
    let mut wants = Vec::new();
    for i in 0..50usize {
        let (n, d) = &files[i % 5];
        match i % 7 {
            0 => {
                w.extend(get_line(0, n));
                wants.push(Want::Get(d.clone()));
            }
            1 => {
                w.extend_from_slice(b"dir\n");
                wants.push(Want::Dir);
            }
            2 => {
                w.extend(get_line(0, &ctx.name(&format!("absent{i}"))));
                wants.push(Want::Err(511));
            }
            3 => {
                let data = pattern(i, 11);
                w.extend(put_line(
                    i as u64,
                    PutMode::New,
                    PutFlow::Now,
                    &ctx.name(&format!("p{i}")),
                ));
                w.extend(payload_of(&data));
                wants.push(Want::Put(data));
            }
            4 => {
                w.extend_from_slice(b"get 0 a/b\n");
                wants.push(Want::Err(510));
            }
            5 => {
                w.extend(get_line(3, n));
                wants.push(Want::Get(d[3..].to_vec()));
            }
            _ => {
                w.extend_from_slice(b"no such request\n");
                wants.push(Want::Err(500));
            }
        }
    }
    w.extend_from_slice(b"close\n");
    let mut c = ctx.session()?;
    c.send("PIPE-1", &w)?;
    for (i, want) in wants.into_iter().enumerate() {
        let label = |s: &str| format!("reply {} of 50: {s}", i + 1);
        match want {
            Want::Get(d) => match c.read_get("PIPE-1", if i % 7 == 5 { 3 } else { 0 })? {
                GetReply::Ok { payload, .. } if payload.data == d => {}
                other => {
                    return Err(violation(
                        "PIPE-1",
                        label("ok get with the file's octets"),
                        other.show(),
                    ));
                }
            },
            Want::Dir => {
                c.read_dir("PIPE-1")?;
            }
            Want::Err(code) => {
                c.expect_err("PIPE-5", code)
                    .map_err(|s| with_line(s, label("").as_bytes()))?;
            }
            Want::Put(d) => {
                let r = c.reply("PIPE-1", &label("ok put"))?;
                let want = Reply::PutOk {
                    size: d.len() as u64,
                    digest: Digest::of(&d),
                };
                ensure(r == want, "PIPE-1", label(&show_reply(&want)), || {
                    show_reply(&r)
                })?;
            }
        }
    }
    c.expect_reply("CLOSE-1", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    Ok(Done::Pass)
}

/// A file the case uploads: (name, content).
type NamedFile = (Vec<u8>, Vec<u8>);

/// Eager puts of `count` files (`base` + index, `size` + index·`step` octets) in chunks of
/// `piece` octets, all in one write; every reply must be the file's `ok put`, in order.
/// Returns the session and the files, for further checks.
fn pipelined_puts(
    ctx: &Ctx<'_>,
    base: &str,
    count: usize,
    size: usize,
    step: usize,
    piece: usize,
) -> Res<(Conn, Vec<NamedFile>)> {
    let files: Vec<NamedFile> = (0..count)
        .map(|i| {
            let name = ctx.name(&format!("{base}{i:02}"));
            (name, pattern(size + i * step, i as u8))
        })
        .collect();
    let mut w = Vec::new();
    for (n, d) in &files {
        w.extend(put_line(d.len() as u64, PutMode::New, PutFlow::Now, n));
        for p in d.chunks(piece) {
            w.extend(chunk(p));
        }
        w.extend(end(d));
    }
    let mut c = ctx.session()?;
    c.send("PIPE-1", &w)?;
    for (i, (_, d)) in files.iter().enumerate() {
        let want = Reply::PutOk {
            size: d.len() as u64,
            digest: Digest::of(d),
        };
        let r = c.reply("PIPE-1", &format!("reply {} of {count}: ok put", i + 1))?;
        ensure(r == want, "PIPE-1", show_reply(&want), || {
            format!("reply {} of {count}: {}", i + 1, show_reply(&r))
        })?;
    }
    Ok((c, files))
}

fn pipe_1_stream(ctx: &mut Ctx<'_>) -> Res<Done> {
    // Odd sizes and 10,000-octet chunks, so that frame heads straddle read boundaries.
    let (mut c, files) = pipelined_puts(ctx, "s", 48, 65_003, 11, 10_000)?;
    let (n, d) = &files[47];
    expect_content(&mut c, "PIPE-1", n, d)?;
    c.close()?;
    Ok(Done::Pass)
}

fn pipe_1_tiny_chunks(ctx: &mut Ctx<'_>) -> Res<Done> {
    // Eight wire octets per file octet: most reads end inside a chunk head, which a server
    // must keep while it reads on, however much input has arrived before it.
    let (c, _) = pipelined_puts(ctx, "t", 16, 16_384, 1, 1)?;
    c.close()?;
    Ok(Done::Pass)
}

fn pipe_1_effects(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("effects");
    let mut w = put_line(2, PutMode::New, PutFlow::Now, &name);
    w.extend(payload_of(b"v1"));
    w.extend(get_line(0, &name));
    w.extend(put_line(2, PutMode::Replace, PutFlow::Now, &name));
    w.extend(payload_of(b"v2"));
    w.extend(get_line(0, &name));
    let mut c = ctx.session()?;
    c.send("PIPE-1", &w)?;
    for v in [b"v1", b"v2"] {
        c.expect_reply(
            "PIPE-1",
            &Reply::PutOk {
                size: 2,
                digest: Digest::of(v),
            },
        )?;
        match c.read_get("PIPE-1", 0)? {
            GetReply::Ok { payload, .. } if payload.data == v => {}
            other => {
                return Err(violation(
                    "PIPE-1",
                    format!("ok get with {:?}, the put before it complete", show(v)),
                    other.show(),
                ));
            }
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn err_8_after_502(ctx: &mut Ctx<'_>) -> Res<Done> {
    let after_name = ctx.name("after-502");
    let mut w = b"put 5 new later x\n".to_vec();
    w.extend(put_line(1, PutMode::New, PutFlow::Now, &after_name));
    w.extend(payload_of(b"!"));
    w.extend_from_slice(b"dir\n");
    let mut c = ctx.session()?;
    c.send("ERR-8", &w)?;
    c.expect_err("ERR-6", 502)?;
    c.expect_closed("ERR-8", "err 502")?;
    invisible(
        ctx,
        "ERR-8",
        &after_name,
        "it was sent after a line answered with 502",
    )?;
    Ok(Done::Pass)
}

fn close_1_nothing_after(ctx: &mut Ctx<'_>) -> Res<Done> {
    let late = ctx.name("after-close");
    let mut w = b"close\n".to_vec();
    w.extend(put_line(1, PutMode::New, PutFlow::Now, &late));
    w.extend(payload_of(b"!"));
    w.extend_from_slice(b"dir\n");
    let mut c = ctx.session()?;
    c.send("CLOSE-1", &w)?;
    c.expect_reply("CLOSE-1", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    invisible(ctx, "CLOSE-1", &late, "it was sent after close")?;
    Ok(Done::Pass)
}

fn close_4_eof(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    c.shutdown_write();
    c.expect_closed("CLOSE-4", "EOF from the client (no bye)")?;
    let mut c = ctx.session()?;
    c.send("CLOSE-4", b"di")?;
    c.shutdown_write();
    c.expect_closed("CLOSE-4", "EOF inside a request line (no reply, no bye)")?;
    Ok(Done::Pass)
}

fn close_5_half_close(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("half");
    upload(ctx, &name, b"half")?;
    let mut c = ctx.session()?;
    let mut w = b"dir\n".to_vec();
    w.extend(get_line(0, &name));
    c.send("CLOSE-5", &w)?;
    c.shutdown_write();
    c.read_dir("CLOSE-5")?;
    match c.read_get("CLOSE-5", 0)? {
        GetReply::Ok { payload, .. } if payload.data == b"half" => {}
        other => {
            return Err(violation(
                "CLOSE-5",
                "ok get for the request sent before EOF",
                other.show(),
            ));
        }
    }
    c.expect_closed("CLOSE-4", "the replies (no bye after EOF)")?;
    Ok(Done::Pass)
}

fn close_6_linger(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let mut w = b"put 5 new later x\n".to_vec();
    w.extend(vec![b'j'; 60_000]);
    let _ = c.send_lenient(&w);
    // Give the server time to answer and close before reading anything.
    std::thread::sleep(Duration::from_millis(300));
    c.expect_err("CLOSE-6", 502)?;
    c.expect_closed("ERR-5", "err 502")?;
    Ok(Done::Pass)
}

fn ver_5_versions(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (mut c, g) = ctx.open()?;
    let unlisted = (2..=99_999u32)
        .find(|v| !g.versions().iter().any(|x| x.get() == *v))
        .unwrap_or(99_999);
    c.send("VER-5", format!("version {unlisted}\n").as_bytes())?;
    c.expect_err("VER-5", 503)?;
    // The session is still version 1, and version is no longer first.
    c.send("VER-6", b"version 1\n")?;
    c.expect_err("VER-6", 500)?;
    c.dir("VER-5")?;
    c.close()?;
    let mut c = ctx.session()?;
    c.send("VER-4", b"version 1\n")?;
    c.expect_reply("VER-4", &Reply::VersionOk(ferry_wire::Version::V1))?;
    c.dir("VER-4")?;
    c.send("VER-6", b"version 1\n")?;
    c.expect_err("VER-6", 500)?;
    c.close()?;
    // A malformed first line also ends "first".
    let mut c = ctx.session()?;
    c.send("VER-6", b"bogus\nversion 1\n")?;
    c.expect_err("ERR-6", 500)?;
    c.expect_err("VER-6", 500)?;
    c.close()?;
    Ok(Done::Pass)
}

fn ext_4_unlisted(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (mut c, g) = ctx.open()?;
    let offered: Vec<String> = g
        .extensions()
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect();
    for req in ["starttls", "auth plain x", "x-conformance-probe"] {
        let verb = req.split(' ').next().unwrap_or(req);
        if offered.iter().any(|o| o == verb) {
            continue;
        }
        c.send("EXT-4", format!("{req}\n").as_bytes())?;
        match c.reply("EXT-4", "err 503 or err 500")? {
            Reply::Err(e) if e.code == Code::UNSUPPORTED || e.code == Code::SYNTAX => {}
            other => {
                return Err(violation(
                    "EXT-4",
                    format!("err 503 (known extension) or 500 (unknown) for {req:?}"),
                    show_reply(&other),
                ));
            }
        }
    }
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

fn sec_10_read_only(ctx: &mut Ctx<'_>) -> Res<Done> {
    let addr = ctx.read_only()?;
    let deadline = ctx.deadline();
    let (mut c, g) = Conn::open(addr, deadline)?;
    let before = c.dir("DIR-1")?;
    let name = ctx.name("ro");
    let existing = before.first().map(|e| e.name.as_bytes().to_vec());
    c.send("SEC-10", &put_line(3, PutMode::New, PutFlow::Wait, &name))?;
    c.expect_err("SEC-10", 514)?;
    let mut w = put_line(
        3,
        PutMode::Replace,
        PutFlow::Now,
        existing.as_deref().unwrap_or(&name),
    );
    w.extend(payload_of(b"abc"));
    w.extend_from_slice(b"dir\n");
    c.send("PUT-9", &w)?;
    c.expect_err("SEC-10", 514)?;
    let mid = c.read_dir("PUT-9")?;
    c.send(
        "PUT-2",
        &put_line(3, PutMode::New, PutFlow::Wait, b"../escape"),
    )?;
    c.expect_err("PUT-2", 510)?;
    let max = g.limits().max_size;
    if max < u64::MAX {
        c.send(
            "PUT-2",
            &put_line(max + 1, PutMode::New, PutFlow::Wait, &name),
        )?;
        c.expect_err("PUT-2", 514)?;
    }
    let after_l = c.dir("DIR-1")?;
    c.close()?;
    ensure(
        before == mid && mid == after_l,
        "SEC-10",
        "the listing unchanged",
        || format!("{} entries before, {} after", before.len(), after_l.len()),
    )?;
    Ok(Done::Pass)
}

fn time_1_idle(ctx: &mut Ctx<'_>) -> Res<Done> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("idle <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.idle) <= max_wait,
    )?;
    let idle = Duration::from_secs(g.limits().idle);
    let (mut c, _) = Conn::open(addr, after(idle + Duration::from_secs(10)))?;
    c.dir("TIME-1")?;
    let start = Instant::now();
    // The server's clock started when it sent the reply, a moment before ours: allow 0.5 s.
    let early = idle.saturating_sub(Duration::from_millis(500));
    c.expect_silence(
        "HELLO-7",
        early,
        &format!("idle={} s has not passed", idle.as_secs()),
    )?;
    c.set_deadline(start + idle + Duration::from_secs(5));
    match c.wait_closed() {
        Ok(rest) => {
            let r = ensure(
                rest.starts_with(b"err 421"),
                "TIME-5",
                "err 421 timeout before the close",
                || format!("{:?}", show(&rest)),
            );
            ctx.soft(r)?;
            Ok(Done::PassWith(format!(
                "closed after {:.1} s",
                start.elapsed().as_secs_f64()
            )))
        }
        Err(rest) => Err(violation(
            "TIME-1",
            format!("the session timed out after idle={} s", idle.as_secs()),
            format!(
                "still open after {:.1} s (received {:?})",
                start.elapsed().as_secs_f64(),
                show(&rest)
            ),
        )),
    }
}

fn stall_server(ctx: &Ctx<'_>) -> Res<(std::net::SocketAddr, Duration)> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("stall <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.stall) <= max_wait,
    )?;
    Ok((addr, Duration::from_secs(g.limits().stall)))
}

fn wait_timeout(ctx: &mut Ctx<'_>, c: &mut Conn, stall: Duration, req: &str) -> Res<Duration> {
    let start = Instant::now();
    c.expect_silence(
        "HELLO-7",
        stall.saturating_sub(Duration::from_millis(500)),
        &format!("stall={} s has not passed", stall.as_secs()),
    )?;
    c.set_deadline(start + stall + Duration::from_secs(5));
    match c.wait_closed() {
        Ok(rest) => {
            let r = ensure(
                rest.starts_with(b"err 421"),
                "TIME-5",
                "err 421 timeout before the close",
                || format!("{:?}", show(&rest)),
            );
            ctx.soft(r)?;
            Ok(start.elapsed())
        }
        Err(rest) => Err(violation(
            req,
            format!("the session timed out after stall={} s", stall.as_secs()),
            format!(
                "still open after {:.1} s (received {:?})",
                start.elapsed().as_secs_f64(),
                show(&rest)
            ),
        )),
    }
}

fn time_2_line(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (mut c, _) = Conn::open(addr, after(stall + Duration::from_secs(10)))?;
    c.send("TIME-2", b"di")?;
    let t = wait_timeout(ctx, &mut c, stall, "TIME-2")?;
    Ok(Done::PassWith(format!(
        "closed after {:.1} s",
        t.as_secs_f64()
    )))
}

fn time_2_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (mut c, _) = Conn::open(addr, after(stall + Duration::from_secs(10)))?;
    let name = ctx.name("stalled");
    c.send("TIME-2", &put_line(10, PutMode::New, PutFlow::Wait, &name))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    c.send("TIME-2", &chunk(b"abcd"))?;
    let t = wait_timeout(ctx, &mut c, stall, "TIME-2")?;
    // Nothing visible, on that server.
    let (mut c, _) = Conn::open(addr, after(Duration::from_secs(10)))?;
    let l = c.dir("DIR-1")?;
    let _ = c.close();
    ensure(
        !l.iter().any(|e| e.name.as_bytes() == name),
        "TIME-4",
        "nothing visible after the timeout",
        || format!("{} is listed", show(&name)),
    )?;
    Ok(Done::PassWith(format!(
        "closed after {:.1} s",
        t.as_secs_f64()
    )))
}

fn time_3_slow_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("idle <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.idle) <= max_wait,
    )?;
    let idle = Duration::from_secs(g.limits().idle);
    let stall = Duration::from_secs(g.limits().stall);
    let gap = (stall / 3).min(Duration::from_millis(500));
    let total = idle + Duration::from_secs(1);
    let (mut c, _) = Conn::open(addr, after(total * 2 + Duration::from_secs(10)))?;
    let name = ctx.name("slow");
    let data = pattern(8, 12);
    c.send("TIME-3", &put_line(8, PutMode::New, PutFlow::Wait, &name))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    let mut p = chunk(&data);
    p.extend(end(&data));
    let pieces = (total.as_millis() / gap.as_millis().max(1)) as usize + 1;
    let per = p.len().div_ceil(pieces).max(1);
    let start = Instant::now();
    c.send_drip("TIME-3", &p, per, gap)?;
    c.expect_reply(
        "TIME-3",
        &Reply::PutOk {
            size: 8,
            digest: Digest::of(&data),
        },
    )?;
    c.close()?;
    Ok(Done::PassWith(format!(
        "upload took {:.1} s with idle={} s",
        start.elapsed().as_secs_f64(),
        idle.as_secs()
    )))
}

/// How many pipelined gets of a 2 MiB file make more output than loopback socket buffers
/// hold, so that a server sending it to a client that does not read blocks in the middle.
const GETS: usize = 12;

/// Uploads a 2 MiB file to the server at `addr` and sends [`GETS`] gets of it in one write;
/// returns the connection and the file, nothing of the replies read.
fn gets_unread(ctx: &Ctx<'_>, addr: std::net::SocketAddr, base: &str) -> Res<(Conn, Vec<u8>)> {
    let name = ctx.name(base);
    let data = pattern(2 << 20, 21);
    let (mut c, _) = Conn::open(addr, ctx.deadline() + Duration::from_secs(30))?;
    c.put_ok("PUT-12", &name, PutMode::New, PutFlow::Wait, &data)?;
    let line = get_line(0, &name);
    c.send("PIPE-2", &line.repeat(GETS))?;
    Ok((c, data))
}

fn time_2_slow_reader(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (mut c, data) = gets_unread(ctx, addr, "slow-reader")?;
    // Pauses of half the stall timeout, each followed by a burst of reading: the server's
    // blocked writes progress at least every half stall, so it must not give up on the
    // client.
    let pause = stall / 2;
    let start = Instant::now();
    'outer: while start.elapsed() < stall * 3 {
        std::thread::sleep(pause);
        // At most 2 MiB per burst, so that the server really waits between bursts (an
        // unbounded drain would take everything as fast as the server writes it). 2 MiB
        // frees enough of a send buffer for a server to see the socket writable again.
        let before = c.buffered().len();
        while c.buffered().len() < before + (2 << 20) {
            c.set_deadline(Instant::now() + Duration::from_millis(20));
            match c.read_more() {
                Some(true) => {}
                Some(false) => break 'outer,
                None => break,
            }
        }
    }
    c.set_deadline(Instant::now() + Duration::from_secs(30));
    for i in 0..GETS {
        let r = c.read_get("TIME-2", 0).map_err(|s| match s {
            crate::case::Stop::Violation(mut v) => {
                v.requirement = "TIME-2".into();
                v.expected = format!(
                    "reply {} of {GETS}: the whole payload, the client read at least every \
                     {:.1} s (stall={} s) ({})",
                    i + 1,
                    pause.as_secs_f64(),
                    stall.as_secs(),
                    v.expected
                );
                crate::case::Stop::Violation(v)
            }
            other => other,
        })?;
        match r {
            GetReply::Ok { payload, .. }
                if payload.data == data && payload.trailer == Trailer::End(Digest::of(&data)) => {}
            other => {
                return Err(violation(
                    "GET-5",
                    format!(
                        "reply {} of {GETS}: the file and `end` with its digest",
                        i + 1
                    ),
                    other.show(),
                ));
            }
        }
    }
    Ok(Done::Pass)
}

fn time_2_stuck_reader(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (c, data) = gets_unread(ctx, addr, "stuck-reader")?;
    // Accept nothing for stall + 2 s (the server blocks on a full socket), then read all.
    std::thread::sleep(stall + Duration::from_secs(2));
    let mut c = c;
    c.set_deadline(Instant::now() + Duration::from_secs(20));
    let (closed, rest) = match c.wait_closed() {
        Ok(r) => (true, r),
        Err(r) => (false, r),
    };
    let all = GETS * data.len();
    ensure(
        closed && rest.len() < all,
        "TIME-2",
        format!(
            "the session dropped: the client accepted no octet for {} s with stall={} s",
            (stall + Duration::from_secs(2)).as_secs(),
            stall.as_secs()
        ),
        || {
            if rest.len() >= all {
                format!("all {GETS} payloads were sent ({} octets)", rest.len())
            } else {
                format!("still open after {} octets", rest.len())
            }
        },
    )?;
    Ok(Done::PassWith(format!(
        "dropped after {} of {all} octets",
        rest.len()
    )))
}
