//! Server cases that need a hook from the tester (see [`crate::hooks`]): a file that changes
//! while it is sent (GET-9) and a graceful shutdown (CLOSE-8, CLOSE-9). Without the hook
//! each is `unimplemented`.

use std::time::{Duration, Instant};

use ferry_wire::{Code, Digest, PutFlow, PutMode, Reply};

use super::Ctx;
use crate::case::{Done, Res, ensure, violation};
use crate::hooks::Touch;
use crate::net::{Conn, LineRead, Trailer, put_line, show, show_reply};

type CaseFn = fn(&mut Ctx<'_>) -> Res<Done>;

/// Cases run with the others.
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "GET-9/1",
        "a file that grows while it is sent: `abort 430 changed`, connection usable (--touch-cmd)",
        &["GET-9", "DATA-8", "DATA-9", "DATA-12"],
        get_9_grows,
    ),
    (
        "GET-9/2",
        "a file truncated while it is sent: `abort 430 changed` at a chunk boundary (--touch-cmd)",
        &["GET-9", "DATA-8", "DATA-11", "DATA-12"],
        get_9_shrinks,
    ),
];

/// Cases that end the main server: run after every other case.
pub(crate) const LAST: &[(&str, &str, &[&str], CaseFn)] = &[(
    "CLOSE-8/1",
    "graceful shutdown: idle sessions get 422, requests in progress finish or abort at a chunk \
     boundary, no new session (--shutdown-cmd)",
    &["CLOSE-8", "CLOSE-9", "CLOSE-10", "ERR-5", "PIPE-7"],
    close_8_shutdown,
)];

/// Larger than what loopback socket buffers hold, so that a server sending it to a client
/// that does not read is still reading the file when the hook runs.
const BIG: usize = 24 << 20;

fn big_file(seed: u8) -> Vec<u8> {
    (0..BIG)
        .map(|i| ((i as u64 * 131 + u64::from(seed)) % 251) as u8)
        .collect()
}

/// Uploads `data` under `name` and starts a get of it whose payload is left unread; returns
/// the connection after `ok get`.
fn stalled_get(ctx: &Ctx<'_>, name: &[u8], data: &[u8]) -> Res<Conn> {
    let mut c = ctx.session()?;
    c.put_ok("PUT-12", name, PutMode::New, PutFlow::Wait, data)?;
    let mut line = b"get 0 ".to_vec();
    line.extend_from_slice(name);
    line.push(b'\n');
    c.send("GET-5", &line)?;
    match c.reply("GET-5", "ok get SIZE MTIME")? {
        Reply::GetOk { size, .. } if size == data.len() as u64 => Ok(c),
        other => Err(violation(
            "GET-2",
            format!("ok get {} MTIME", data.len()),
            show_reply(&other),
        )),
    }
}

fn get_9_changed(ctx: &mut Ctx<'_>, how: Touch, base: &str) -> Res<Done> {
    // The hook first, so that a run without it costs no upload.
    ctx.touch_hook()?;
    let name = ctx.name(base);
    let data = big_file(3);
    let mut c = stalled_get(ctx, &name, &data)?;
    // Let the server fill the socket buffers and block, then change the file.
    std::thread::sleep(Duration::from_millis(200));
    ctx.touch(&name, how)?;
    let p = c.payload(Some(data.len() as u64))?;
    // Whatever was sent before the change is the file's octets, in order.
    ensure(
        data.starts_with(&p.data),
        "GET-5",
        "chunk data equal to the file's octets",
        || format!("{} octets that differ from the file's", p.data.len()),
    )?;
    match &p.trailer {
        Trailer::Abort(e) if e.code == Code::CHANGED => {}
        other => {
            return Err(violation(
                "GET-9",
                format!(
                    "`abort 430 changed` (the file was changed by the hook: {})",
                    how.as_str()
                ),
                format!("{} after {} octets", other.show(), p.data.len()),
            ));
        }
    }
    // DATA-9: the connection stays usable; the next message follows the abort.
    let mut d = c.dir("DATA-9")?;
    d.retain(|e| e.name.as_bytes() == name);
    ensure(
        d.len() == 1,
        "DATA-9",
        "a listing after the abort that lists the file",
        || format!("{} entries for it", d.len()),
    )?;
    c.close()?;
    Ok(Done::PassWith(format!(
        "aborted after {} of {} octets",
        p.data.len(),
        data.len()
    )))
}

fn get_9_grows(ctx: &mut Ctx<'_>) -> Res<Done> {
    get_9_changed(ctx, Touch::Append, "grows")
}

fn get_9_shrinks(ctx: &mut Ctx<'_>) -> Res<Done> {
    get_9_changed(ctx, Touch::Truncate, "shrinks")
}

/// Reads until the connection ends; `Ok(rest)` on EOF, `Err(rest)` at the deadline.
fn rest_until_closed(c: &mut Conn, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
    c.set_deadline(Instant::now() + within);
    c.wait_closed()
}

fn close_8_shutdown(ctx: &mut Ctx<'_>) -> Res<Done> {
    let hook = ctx.shutdown_hook()?.clone();
    // A session that is idle, one in the middle of an upload, one with a get whose payload
    // it does not read.
    let mut idle = ctx.session()?;
    idle.dir("DIR-1")?;
    let up = ctx.name("upload");
    let mut upload = ctx.session()?;
    upload.send("PUT-3", &put_line(10, PutMode::New, PutFlow::Wait, &up))?;
    upload.expect_reply("PUT-3", &Reply::Go)?;
    upload.send("PUT-3", b"data 4\nabcd")?;
    let big = big_file(5);
    let mut get = stalled_get(ctx, &ctx.name("big"), &big)?;
    // And one whose upload stalls for good: the deadline passes in the middle of it.
    let stuck_name = ctx.name("stuck");
    let mut stuck = ctx.session()?;
    stuck.send(
        "PUT-3",
        &put_line(10, PutMode::New, PutFlow::Wait, &stuck_name),
    )?;
    stuck.expect_reply("PUT-3", &Reply::Go)?;
    stuck.send("PUT-3", b"data 4\nabcd")?;
    std::thread::sleep(Duration::from_millis(100));

    hook.run(&[]).map_err(crate::case::unimplemented)?;
    let t0 = Instant::now();
    let within = ctx.timeout.max(Duration::from_secs(5));

    // The idle session: `err 422` instead of reading a request, then the close (CLOSE-8).
    idle.set_deadline(t0 + within);
    match idle.line() {
        LineRead::Line(l) if l.starts_with(b"err 422") => {}
        LineRead::Line(l) => {
            return Err(violation(
                "CLOSE-8",
                "err 422 shutting-down on an idle session",
                format!("{:?}", show(&l)),
            ));
        }
        LineRead::Eof(rest) => {
            return Err(violation(
                "CLOSE-8",
                "err 422 shutting-down on an idle session before the close",
                format!("the connection closed after {:?}", show(&rest)),
            ));
        }
        LineRead::Timeout | LineRead::TooLong => {
            return Err(violation(
                "CLOSE-8",
                format!("err 422 shutting-down on an idle session within {within:?}"),
                "nothing".to_owned(),
            ));
        }
    }
    idle.expect_closed("ERR-5", "err 422")?;
    let idle_done = t0.elapsed();

    // No new session once the server has stopped its sessions (CLOSE-8).
    if let Ok(mut late) = Conn::connect(&ctx.addr, Instant::now() + Duration::from_secs(2)) {
        match late.line() {
            LineRead::Line(l) if l.starts_with(b"ferry/") => {
                return Err(violation(
                    "CLOSE-8",
                    "no new session after the shutdown began (connection refused, or closed \
                     without a greeting)",
                    format!("a greeting {:?}", show(&l)),
                ));
            }
            _ => {}
        }
    }

    // The upload in progress: the request finishes (`ok put`, then 422 and the close) or the
    // deadline passed (422 and the close, nothing committed).
    // A known deadline of the server (at most 3 s) is held against it below.
    let grace = ctx
        .target
        .hooks
        .shutdown_grace
        .filter(|g| *g <= Duration::from_secs(3));
    let data = b"abcdefghij";
    let mut rest = b"data 6\nefghij".to_vec();
    rest.extend_from_slice(format!("end {}\n", Digest::of(data)).as_bytes());
    let sent = upload.send_lenient(&rest);
    let sent_after = t0.elapsed();
    upload.set_deadline(t0 + within);
    let upload_note = match upload.line() {
        LineRead::Line(l) if l.starts_with(b"ok put ") => {
            let want = format!("ok put 10 {}\n", Digest::of(data));
            ensure(l == want.as_bytes(), "PUT-18", want.trim_end(), || {
                format!("{:?}", show(&l))
            })?;
            match upload.line() {
                LineRead::Line(l) if l.starts_with(b"err 422") => {}
                LineRead::Line(l) => {
                    return Err(violation(
                        "CLOSE-8",
                        "err 422 shutting-down after the put's reply",
                        format!("{:?}", show(&l)),
                    ));
                }
                _ => {
                    return Err(violation(
                        "CLOSE-8",
                        "err 422 shutting-down after the put's reply",
                        "the connection ended without it".to_owned(),
                    ));
                }
            }
            upload.expect_closed("ERR-5", "err 422")?;
            "the upload finished"
        }
        LineRead::Line(l) if l.starts_with(b"err 422") => {
            if let Some(g) = grace.filter(|g| sent_after < *g / 2) {
                return Err(violation(
                    "CLOSE-8",
                    format!(
                        "ok put: the upload was complete {:.2} s after the shutdown began, well \
                         before the server's deadline of {:.1} s (--shutdown-grace)",
                        sent_after.as_secs_f64(),
                        g.as_secs_f64()
                    ),
                    "err 422 shutting-down",
                ));
            }
            upload.expect_closed("ERR-5", "err 422")?;
            "the upload was cut at the deadline"
        }
        LineRead::Line(l) => {
            return Err(violation(
                "CLOSE-9",
                "ok put (the upload finished) or err 422 (the deadline passed)",
                format!("{:?}", show(&l)),
            ));
        }
        LineRead::Eof(rest) if !sent || rest.is_empty() => {
            return Err(violation(
                "PIPE-7",
                "ok put or err 422 before the close (422 closes with a reply)",
                "the connection closed without a reply".to_owned(),
            ));
        }
        LineRead::Eof(rest) => {
            return Err(violation(
                "CLOSE-9",
                "ok put or err 422",
                format!("{:?} then the close", show(&rest)),
            ));
        }
        LineRead::Timeout | LineRead::TooLong => {
            return Err(violation(
                "CLOSE-8",
                format!("a reply to the upload within {within:?} of the shutdown"),
                "nothing".to_owned(),
            ));
        }
    };

    // The get: read slowly (1 MiB every 400 ms, always accepting output) until 3 s after the
    // shutdown began, so that a server with a shorter deadline aborts it; then read at full
    // speed. Either the whole payload and `end`, then 422, or whole chunks then `abort 422`
    // and the close (CLOSE-9) — never a cut chunk: the client kept reading (CLOSE-10).
    // With a known deadline of at most 3 s the download must be cut: read slowly until 3 s
    // past it (24 MiB at 2.5 MiB/s, with a pause, lasts longer).
    // With the deadline known, the client also pauses 1.5 s across it, from 0.5 s before
    // (CLOSE-10 grants it 5 s): the server is then blocked in the middle of a chunk when the
    // deadline passes, and one that gives up on that chunk at the deadline cuts it.
    let slow_for = grace.map_or(Duration::from_secs(3), |g| g + Duration::from_secs(3));
    let mut pause_at = grace.map(|g| g.saturating_sub(Duration::from_millis(500)));
    'slow: while t0.elapsed() < slow_for {
        if pause_at.is_some_and(|at| t0.elapsed() >= at) {
            pause_at = None;
            std::thread::sleep(Duration::from_millis(1500));
        }
        let before = get.buffered().len();
        while get.buffered().len() < before + (1 << 20) {
            get.set_deadline(Instant::now() + Duration::from_millis(100));
            match get.read_more() {
                Some(true) => {}
                Some(false) => break 'slow,
                None => break,
            }
        }
        // Longer than a blocked write's time slice in many servers: a write that gives up
        // at the deadline instead of finishing its chunk shows.
        std::thread::sleep(Duration::from_millis(400));
    }
    get.set_deadline(Instant::now() + within + Duration::from_secs(10));
    let p = get.payload(Some(big.len() as u64)).map_err(|s| match s {
        crate::case::Stop::Violation(mut v) => {
            v.requirement = "CLOSE-9".into();
            v.expected = format!(
                "a get payload that ends at a chunk boundary with a trailer ({})",
                v.expected
            );
            crate::case::Stop::Violation(v)
        }
        other => other,
    })?;
    ensure(
        big.starts_with(&p.data),
        "GET-5",
        "chunk data equal to the file's octets",
        || format!("{} octets that differ from the file's", p.data.len()),
    )?;
    let get_note = match &p.trailer {
        Trailer::Abort(e) if e.code == Code::SHUTTING_DOWN => {
            match rest_until_closed(&mut get, within) {
                Ok(rest) if rest.is_empty() => {}
                Ok(rest) | Err(rest) => {
                    return Err(violation(
                        "CLOSE-9",
                        "the close right after `abort 422`",
                        format!("then {:?}", show(&rest)),
                    ));
                }
            }
            format!("the get was aborted after {} octets", p.data.len())
        }
        Trailer::End(_) if grace.is_some() => {
            return Err(violation(
                "CLOSE-9",
                format!(
                    "`abort 422 shutting-down`: the download was still being read {:.1} s after \
                     the shutdown began, past the server's deadline of {:.1} s (--shutdown-grace)",
                    slow_for.as_secs_f64(),
                    grace.unwrap_or_default().as_secs_f64()
                ),
                format!("the whole payload and `end` ({} octets)", p.data.len()),
            ));
        }
        Trailer::End(d) => {
            ensure(
                *d == Digest::of(&big),
                "SUM-1",
                "the digest of the file",
                || d.to_string(),
            )?;
            match rest_until_closed(&mut get, within) {
                Ok(rest) if rest.starts_with(b"err 422") => {}
                Ok(rest) | Err(rest) => {
                    return Err(violation(
                        "CLOSE-8",
                        "err 422 shutting-down after the get's payload, then the close",
                        format!("{:?}", show(&rest)),
                    ));
                }
            }
            "the get finished".to_owned()
        }
        Trailer::Abort(e) => {
            return Err(violation(
                "CLOSE-9",
                "`end` or `abort 422 shutting-down`",
                Trailer::Abort(e.clone()).show(),
            ));
        }
    };
    // The stalled upload, when the server's deadline is known (at most 3 s): at the deadline
    // the staging file goes, `err 422 shutting-down`, the close (CLOSE-9) — not a stall
    // timeout's 421.
    if let Some(g) = grace {
        stuck.set_deadline(t0 + g + within);
        match stuck.line() {
            LineRead::Line(l) if l.starts_with(b"err 422") => {}
            LineRead::Line(l) => {
                return Err(violation(
                    "CLOSE-9",
                    "err 422 shutting-down for an upload in progress at the deadline",
                    format!("{:?}", show(&l)),
                ));
            }
            LineRead::Eof(rest) => {
                return Err(violation(
                    "CLOSE-9",
                    "err 422 shutting-down for an upload in progress at the deadline",
                    format!("the connection closed after {:?}", show(&rest)),
                ));
            }
            LineRead::Timeout | LineRead::TooLong => {
                return Err(violation(
                    "CLOSE-9",
                    format!("err 422 shutting-down within {within:?} of the deadline"),
                    "nothing".to_owned(),
                ));
            }
        }
    }
    drop(stuck);

    Ok(Done::PassWith(format!(
        "idle session closed after {:.1} s; {upload_note}; {get_note}",
        idle_done.as_secs_f64()
    )))
}
