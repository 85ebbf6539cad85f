//! Server cases for rules the specification clarified (see the README's "Rules clarified"):
//! names judged by Unicode 18.0.0 (NAME-5, NAME-13), a refused eager put that ends with
//! `abort` (PUT-9, PUT-15), an over-long line inside an upload (FRAME-2, DATA-6), PUT-8
//! before the name, and the stall clock of a request line pipelined behind a long reply
//! (TIME-2).

use std::time::{Duration, Instant};

use ferry_wire::limits::MAX_LINE;
use ferry_wire::{
    Code, Digest, Hello, PayloadReceiver, PutFlow, PutMode, Reply, Step, decode_hello, decode_reply,
};

use super::Ctx;
use super::cases::{chunk, pattern};
use crate::case::{Done, Res, ensure, unimplemented, violation};
use crate::net::{
    Conn, Endpoint, GetReply, Transport, after, payload_of, put_line, show, show_reply,
};

type CaseFn = fn(&mut Ctx<'_>) -> Res<Done>;

/// (id, title, requirements, body), as in `cases.rs`.
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "NAME-13/1",
        "code points Unicode 18.0.0 does not assign: 510 for get, put wait and eager put",
        &["NAME-13", "NAME-7", "GET-1", "PUT-3", "PUT-9"],
        name_13_unassigned,
    ),
    (
        "NAME-5/1",
        "k + U+16D67 U+16D67 is not NFC under Unicode 18.0.0: 510 for get, put wait and eager put",
        &["NAME-5", "NAME-7", "PUT-9"],
        name_5_unicode_18,
    ),
    (
        "PUT-9/3",
        "a refused eager put whose payload ends with abort gets its refusal, not 434",
        &["PUT-9", "PUT-15", "PUT-2", "DATA-9"],
        put_9_refused_abort,
    ),
    (
        "FRAME-2/3",
        "4096 octets without LF where a chunk head is expected: 502 (not 501), close",
        &["FRAME-2", "DATA-5", "DATA-6", "PUT-16"],
        frame_2_in_upload,
    ),
    (
        "PUT-8/2",
        "eager put above max-eager with an invalid name: 502 and close, payload not read",
        &["PUT-8", "ERR-6", "ERR-5"],
        put_8_before_name,
    ),
    (
        "TIME-2/3",
        "a request line pipelined behind a long get reply is not timed out while it is sent",
        &["TIME-2", "PIPE-1"],
        time_2_pipelined,
    ),
];

// ------------------------------------------------------------------- helpers ---

fn get_line(name: &[u8]) -> Vec<u8> {
    let mut l = b"get 0 ".to_vec();
    l.extend_from_slice(name);
    l.push(b'\n');
    l
}

/// Expects `err CODE` for each name sent with `line`, in order, on one session.
fn each_refused(
    c: &mut Conn,
    req: &str,
    code: u16,
    what: &str,
    names: &[(&str, Vec<u8>)],
    line: fn(&[u8]) -> Vec<u8>,
) -> Res<()> {
    for (rule, name) in names {
        c.send(req, &line(name))?;
        match c.reply(req, &format!("err {code}"))? {
            Reply::Err(e) if e.code.get() == code => {}
            other => {
                return Err(violation(
                    req,
                    format!("err {code} for {what} of {:?} ({rule})", show(name)),
                    show_reply(&other),
                ));
            }
        }
    }
    Ok(())
}

/// Eager puts of `names`, each with a 5-octet payload, all in one write; then `dir`.
fn eager_refused(c: &mut Conn, req: &str, names: &[(&str, Vec<u8>)]) -> Res<()> {
    let mut w = Vec::new();
    for (_, name) in names {
        w.extend(put_line(5, PutMode::New, PutFlow::Now, name));
        w.extend(payload_of(b"dir\n\n"));
    }
    c.send(req, &w)?;
    for (rule, name) in names {
        match c.reply(req, "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    req,
                    format!(
                        "err 510 for the eager put of {:?} ({rule}) after its payload",
                        show(name)
                    ),
                    show_reply(&other),
                ));
            }
        }
    }
    Ok(())
}

fn wait_line(name: &[u8]) -> Vec<u8> {
    put_line(3, PutMode::New, PutFlow::Wait, name)
}

/// A name that is valid under Unicode 18.0.0 but may be refused by a server whose Unicode
/// data is older (NAME-13 allows that, in the refusing direction only): 511 or 510.
fn valid_or_older_data(c: &mut Conn, req: &str, name: &[u8], what: &str) -> Res<String> {
    c.send(req, &get_line(name))?;
    match c.reply(req, "err 511 (or 510 from older Unicode data)")? {
        Reply::Err(e) if e.code == Code::NOT_FOUND => Ok(format!("{what}: 511")),
        Reply::Err(e) if e.code == Code::BAD_NAME => Ok(format!(
            "{what}: 510 (the server's Unicode data does not assign it; allowed by NAME-13)"
        )),
        other => Err(violation(
            req,
            format!("err 511 for get of the absent {what} {:?}", show(name)),
            show_reply(&other),
        )),
    }
}

// --------------------------------------------------------------------- cases ---

fn unassigned_names() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("U+0378", "a\u{378}b".as_bytes().to_vec()),
        ("U+FFFF, a noncharacter", "x\u{ffff}".as_bytes().to_vec()),
        ("U+E0080", "\u{e0080}tag".as_bytes().to_vec()),
        ("U+1FFFF", "q\u{1ffff}.txt".as_bytes().to_vec()),
        ("U+10FFFF", "\u{10ffff}".as_bytes().to_vec()),
    ]
}

fn name_13_unassigned(ctx: &mut Ctx<'_>) -> Res<Done> {
    let names = unassigned_names();
    let mut c = ctx.session()?;
    each_refused(&mut c, "NAME-13", 510, "get", &names, get_line)?;
    each_refused(
        &mut c,
        "NAME-13",
        510,
        "put wait (no go)",
        &names,
        wait_line,
    )?;
    eager_refused(&mut c, "PUT-9", &names)?;
    // U+10940 SIDETIC LETTER N01 was assigned in Unicode 17.0.
    let sidetic = ctx.name("\u{10940}.txt");
    let note = valid_or_older_data(&mut c, "NAME-13", &sidetic, "U+10940 (Unicode 17.0)")?;
    c.dir("NAME-13")?;
    c.close()?;
    Ok(Done::PassWith(note))
}

fn name_5_unicode_18(ctx: &mut Ctx<'_>) -> Res<Done> {
    // U+16D67 U+16D67 composes to U+16D68 (Kirat Rai, Unicode 16.0).
    let names = vec![
        (
            "k U+16D67 U+16D67",
            "k\u{16d67}\u{16d67}".as_bytes().to_vec(),
        ),
        (
            "U+16D67 U+16D67 after the case's prefix",
            ctx.name("\u{16d67}\u{16d67}"),
        ),
    ];
    let mut c = ctx.session()?;
    each_refused(&mut c, "NAME-5", 510, "get", &names, get_line)?;
    each_refused(&mut c, "NAME-5", 510, "put wait (no go)", &names, wait_line)?;
    eager_refused(&mut c, "PUT-9", &names)?;
    let composed = ctx.name("k\u{16d68}");
    let note = valid_or_older_data(&mut c, "NAME-5", &composed, "k U+16D68 (its NFC form)")?;
    c.dir("NAME-5")?;
    c.close()?;
    Ok(Done::PassWith(note))
}

fn put_9_refused_abort(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("taken-abort");
    {
        let mut c = ctx.session()?;
        c.put_ok("PUT-12", &name, PutMode::Replace, PutFlow::Wait, b"first")?;
        c.close()?;
    }
    let mut c = ctx.session()?;
    let mut w = Vec::new();
    // Refused by the existence check (512), ended with abort after one chunk ...
    w.extend(put_line(6, PutMode::New, PutFlow::Now, &name));
    w.extend(chunk(b"abc"));
    w.extend_from_slice(b"abort 431 storage local read error\n");
    // ... before any chunk ...
    w.extend(put_line(6, PutMode::New, PutFlow::Now, &name));
    w.extend_from_slice(b"abort 430\n");
    // ... and refused by the name check (510).
    w.extend(put_line(3, PutMode::New, PutFlow::Now, b".hidden"));
    w.extend(chunk(b"x"));
    w.extend_from_slice(b"abort 431\n");
    w.extend(get_line(&name));
    c.send("PUT-9", &w)?;
    for (code, what) in [
        (
            512,
            "the refusal 512 (exists), not 434, after a chunk and abort",
        ),
        (512, "the refusal 512 (exists), not 434, after abort alone"),
        (
            510,
            "the refusal 510 (bad name), not 434, after a chunk and abort",
        ),
    ] {
        match c.reply("PUT-9", what)? {
            Reply::Err(e) if e.code.get() == code => {}
            other => return Err(violation("PUT-9", what, show_reply(&other))),
        }
    }
    match c.read_get("PUT-9", 0)? {
        GetReply::Ok { payload, .. } if payload.data == b"first" => {}
        other => {
            return Err(violation(
                "PUT-9",
                "the connection in sync and the file unchanged: ok get of \"first\"",
                other.show(),
            ));
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn frame_2_in_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    let long = vec![b'x'; MAX_LINE];
    let taken = ctx.name("long-taken");
    {
        let mut c = ctx.session()?;
        c.put_ok("PUT-12", &taken, PutMode::Replace, PutFlow::Wait, b"first")?;
        c.close()?;
    }
    let mut invisible = Vec::new();
    // (what, put line, octets before the long line, whether `go` comes first)
    let wait = ctx.name("long-wait");
    let now = ctx.name("long-now");
    let mid = ctx.name("long-mid");
    let variants: Vec<(&str, Vec<u8>, Vec<u8>, bool)> = vec![
        (
            "a wait put, as the first chunk head",
            put_line(5, PutMode::New, PutFlow::Wait, &wait),
            Vec::new(),
            true,
        ),
        (
            "an eager put, as the first chunk head",
            put_line(5, PutMode::New, PutFlow::Now, &now),
            Vec::new(),
            false,
        ),
        (
            "an eager put, after a first chunk",
            put_line(5, PutMode::New, PutFlow::Now, &mid),
            chunk(b"ab"),
            false,
        ),
        (
            "a refused eager put being discarded, after a first chunk",
            put_line(5, PutMode::New, PutFlow::Now, &taken),
            chunk(b"ab"),
            false,
        ),
    ];
    for (what, line, head, go) in variants {
        let mut c = ctx.session()?;
        c.send("FRAME-2", &line)?;
        if go {
            c.expect_reply("PUT-3", &Reply::Go)?;
        }
        let mut w = head;
        w.extend_from_slice(&long);
        let _ = c.send_lenient(&w);
        match c.reply("DATA-6", "err 502") {
            Ok(Reply::Err(e)) if e.code == Code::PROTOCOL => {}
            Ok(other) => {
                return Err(violation(
                    "FRAME-2",
                    format!("err 502 for 4096 octets without LF in {what} (not 501)"),
                    show_reply(&other),
                ));
            }
            Err(s) => return Err(s),
        }
        c.expect_closed("DATA-6", &format!("err 502 for {what}"))?;
    }
    invisible.extend([wait, now, mid]);
    let mut c = ctx.session()?;
    let l = c.dir("DIR-1")?;
    let listed: Vec<&[u8]> = l.iter().map(|e| e.name.as_bytes()).collect();
    if let Some(n) = invisible.iter().find(|n| listed.contains(&n.as_slice())) {
        return Err(violation(
            "PUT-16",
            "nothing visible after a broken upload",
            format!("{} is listed", show(n)),
        ));
    }
    c.close()?;
    Ok(Done::Pass)
}

fn put_8_before_name(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, g) = ctx.server_with("max-eager below 2^64-1", |l| l.max_eager < u64::MAX)?;
    let me = g.limits().max_eager;
    let size = if me == 0 { 1 } else { me + 1 };
    let names: Vec<(&str, Vec<u8>)> = vec![
        ("a leading dot", b".hidden".to_vec()),
        ("a slash", b"a/b".to_vec()),
        ("an empty name", Vec::new()),
        ("not NFC", "k\u{16d67}\u{16d67}".as_bytes().to_vec()),
        ("unassigned", "a\u{378}".as_bytes().to_vec()),
    ];
    for (what, name) in &names {
        // Only the line: a server that answered 510 would first have to read a payload
        // larger than max-eager, which never comes.
        let deadline = after(Duration::from_secs(3)).min(ctx.deadline());
        let (mut c, _) = Conn::open(&addr, deadline)?;
        c.send("PUT-8", &put_line(size, PutMode::New, PutFlow::Now, name))?;
        match c.reply("PUT-8", "err 502") {
            Ok(Reply::Err(e)) if e.code == Code::PROTOCOL => {}
            Ok(other) => {
                return Err(violation(
                    "PUT-8",
                    format!(
                        "err 502 for an eager put of {size} octets (max-eager={me}) with {what}, \
                         before the name check"
                    ),
                    show_reply(&other),
                ));
            }
            Err(s) => return Err(s),
        }
        c.expect_closed("PUT-8", "err 502")?;
    }
    Ok(Done::PassWith(format!("max-eager={me}")))
}

/// A raw connection for [`time_2_pipelined`], which must pace its reads.
struct Raw {
    stream: Transport,
    buf: Vec<u8>,
    deadline: Instant,
}

impl Raw {
    fn open(addr: &Endpoint, deadline: Instant) -> Res<Raw> {
        let stream = Transport::connect(addr, deadline)?;
        let mut r = Raw {
            stream,
            buf: Vec::new(),
            deadline,
        };
        let line = r.line("CONN-4", "the greeting")?;
        match decode_hello(&line) {
            Ok((Hello::Greeting(_), _)) => Ok(r),
            _ => Err(violation("CONN-4", "a greeting", show(&line).to_string())),
        }
    }

    /// Reads at most `max` octets into the buffer; `false` at EOF.
    /// Reads until `max` more octets arrived (several reads: over TLS one read gives at most
    /// a record, 16 KiB, so a single read per pace would read far slower than the case means
    /// to). False: the connection ended before any of them.
    fn read_piece(&mut self, req: &str, max: usize) -> Res<bool> {
        let start = self.buf.len();
        while self.buf.len() - start < max {
            if !self.read(req, max - (self.buf.len() - start))? {
                return Ok(self.buf.len() > start);
            }
        }
        Ok(true)
    }

    fn read(&mut self, req: &str, max: usize) -> Res<bool> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(violation(
                req,
                "the server's reply before the case's deadline",
                "nothing more arrived in time",
            ));
        }
        self.stream.set_read_timeout(Some(left));
        let mut piece = vec![0u8; max];
        match self.stream.read(&mut piece) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&piece[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(violation(
                    req,
                    "the server's reply before the case's deadline",
                    "nothing more arrived in time",
                ))
            }
            Err(_) => Ok(false),
        }
    }

    fn line(&mut self, req: &str, expected: &str) -> Res<Vec<u8>> {
        loop {
            let window = &self.buf[..self.buf.len().min(MAX_LINE)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                return Ok(self.buf.drain(..=lf).collect());
            }
            if !self.read(req, 64 * 1024)? {
                return Err(violation(
                    req,
                    expected,
                    format!(
                        "the server closed the connection (after {:?})",
                        show(&self.buf)
                    ),
                ));
            }
        }
    }

    fn reply(&mut self, req: &str, expected: &str) -> Res<Reply> {
        let line = self.line(req, expected)?;
        decode_reply(&line).map(|(r, _)| r).map_err(|e| {
            violation(
                "FRAME-6",
                format!("a reply line (waiting for {expected})"),
                format!("{:?}: {e}", show(&line)),
            )
        })
    }

    /// Expects `ok dir COUNT` and skips its entry lines.
    fn listing(&mut self, req: &str, what: &str) -> Res<()> {
        match self.reply(req, what)? {
            Reply::DirOk { count } => {
                for _ in 0..count {
                    self.line("DIR-3", "an entry line")?;
                }
                Ok(())
            }
            other => Err(violation(req, what, show_reply(&other))),
        }
    }
}

fn time_2_pipelined(ctx: &mut Ctx<'_>) -> Res<Done> {
    const PIECE: usize = 256 * 1024;
    const PACE: Duration = Duration::from_millis(50);
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("stall <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.stall) <= max_wait,
    )?;
    let stall = Duration::from_secs(g.limits().stall);
    // The client reads at most PIECE octets per PACE for `slow`, so the server is still
    // sending when `stall` has passed since the pipelined line arrived, provided the file
    // outlasts what the client reads meanwhile plus what the sockets can buffer.
    let slow = stall + Duration::from_secs(1);
    let paced = (slow.as_millis() / PACE.as_millis() + 1) as usize * PIECE;
    let size = paced + 16 * 1024 * 1024;
    if g.limits().max_size < size as u64 {
        return Err(unimplemented(format!(
            "needs a server that accepts a {size}-octet upload (max-size)"
        )));
    }
    let name = ctx.name("pipelined-big");
    let data = pattern(size, 21);
    {
        let (mut c, _) = Conn::open(&addr, after(Duration::from_secs(120)))?;
        c.put_ok("PUT-12", &name, PutMode::Replace, PutFlow::Wait, &data)?;
        c.close()?;
    }
    let mut r = Raw::open(&addr, after(slow + Duration::from_secs(60)))?;
    // The get, a complete pipelined `dir`, and the start of a second `dir`, in one write.
    let mut w = get_line(&name);
    w.extend_from_slice(b"dir\ndi");
    r.stream.write_all(&w).map_err(|e| {
        violation(
            "TIME-2",
            "the server reads the requests",
            format!("sending failed: {e}"),
        )
    })?;
    let start = Instant::now();
    match r.reply("TIME-2", "ok get SIZE MTIME")? {
        Reply::GetOk { size: s, .. } if s == size as u64 => {}
        other => {
            return Err(violation(
                "GET-5",
                format!("ok get {size} ..."),
                show_reply(&other),
            ));
        }
    }
    let mut rx = PayloadReceiver::new(size as u64);
    let mut done_at = None;
    loop {
        let (step, used) = rx
            .feed(&r.buf)
            .map_err(|e| violation("DATA-1", "a well-framed payload", e.to_string()))?;
        match step {
            Step::Data(_) | Step::NeedMore if used > 0 => {
                r.buf.drain(..used);
            }
            Step::Data(_) | Step::NeedMore => {
                let pacing = start.elapsed() < slow;
                if pacing {
                    std::thread::sleep(PACE);
                }
                let more = if pacing {
                    r.read_piece("TIME-2", PIECE)?
                } else {
                    r.read("TIME-2", 1024 * 1024)?
                };
                if !more {
                    return Err(violation(
                        "TIME-2",
                        "the whole payload, then the replies to the pipelined requests",
                        format!(
                            "the server closed the connection after {} of {size} octets, {:.1} s \
                             into the reply (timed out a pipelined line while it was sending?)",
                            rx.received(),
                            start.elapsed().as_secs_f64()
                        ),
                    ));
                }
            }
            Step::Complete(d) => {
                r.buf.drain(..used);
                ensure(d == Digest::of(&data), "SUM-1", "the file's digest", || {
                    d.to_string()
                })?;
                done_at = done_at.or(Some(start.elapsed()));
                break;
            }
            Step::Corrupt { .. } | Step::Aborted(_) => {
                return Err(violation(
                    "GET-5",
                    "the complete, verified payload",
                    format!("{step:?}"),
                ));
            }
        }
    }
    let took = done_at.unwrap_or_default();
    // The complete pipelined line is answered after the payload.
    r.listing("TIME-2", "ok dir for the `dir` sent with the get")?;
    // The incomplete one gets the rest now: its clock started when the server became ready
    // to read it, after the payload and the first listing.
    r.stream.write_all(b"r\n").map_err(|e| {
        violation(
            "TIME-2",
            "the connection open after the pipelined replies",
            format!("sending failed: {e}"),
        )
    })?;
    match r.reply("TIME-2", "ok dir for the line completed after the reply") {
        Ok(Reply::DirOk { count }) => {
            for _ in 0..count {
                r.line("DIR-3", "an entry line")?;
            }
        }
        Ok(Reply::Err(e)) if e.code == Code::TIMEOUT => {
            return Err(violation(
                "TIME-2",
                format!(
                    "no stall timeout for a line whose first octets arrived while a {:.1} s reply \
                     was being sent (stall={} s)",
                    took.as_secs_f64(),
                    stall.as_secs()
                ),
                "err 421 timeout",
            ));
        }
        Ok(other) => {
            return Err(violation(
                "TIME-2",
                "ok dir for the line completed after the reply",
                show_reply(&other),
            ));
        }
        Err(s) => return Err(s),
    }
    r.stream.write_all(b"close\n").map_err(|e| {
        violation(
            "CLOSE-1",
            "the connection open",
            format!("sending failed: {e}"),
        )
    })?;
    match r.reply("CLOSE-1", "bye")? {
        Reply::Bye => {}
        other => return Err(violation("CLOSE-1", "bye", show_reply(&other))),
    }
    let conclusive = took > stall;
    Ok(Done::PassWith(if conclusive {
        format!(
            "the reply took {:.1} s with stall={} s",
            took.as_secs_f64(),
            stall.as_secs()
        )
    } else {
        format!(
            "inconclusive: the reply took only {:.1} s with stall={} s (large socket buffers)",
            took.as_secs_f64(),
            stall.as_secs()
        )
    }))
}
