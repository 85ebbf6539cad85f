//! Timeouts (section 3.5, TIME-*).

use super::*;

pub(super) fn time_1_idle(ctx: &mut Ctx<'_>) -> Res<Done> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("idle <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.idle) <= max_wait,
    )?;
    let idle = Duration::from_secs(g.limits().idle);
    let (mut c, _) = Conn::open(&addr, after(idle + Duration::from_secs(10)))?;
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

pub(super) fn stall_server(ctx: &Ctx<'_>) -> Res<(Endpoint, Duration)> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("stall <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.stall) <= max_wait,
    )?;
    Ok((addr, Duration::from_secs(g.limits().stall)))
}

pub(super) fn wait_timeout(
    ctx: &mut Ctx<'_>,
    c: &mut Conn,
    stall: Duration,
    req: &str,
) -> Res<Duration> {
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

pub(super) fn time_2_line(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (mut c, _) = Conn::open(&addr, after(stall + Duration::from_secs(10)))?;
    c.send("TIME-2", b"di")?;
    let t = wait_timeout(ctx, &mut c, stall, "TIME-2")?;
    Ok(Done::PassWith(format!(
        "closed after {:.1} s",
        t.as_secs_f64()
    )))
}

/// TIME-4: after a timed-out upload, nothing of `name` is listed on the server at `addr`.
fn nothing_visible(addr: &Endpoint, name: &[u8]) -> Res<()> {
    let (mut c, _) = Conn::open(addr, after(Duration::from_secs(10)))?;
    let l = c.dir("DIR-1")?;
    let _ = c.close();
    ensure(
        !l.iter().any(|e| e.name.as_bytes() == name),
        "TIME-4",
        "nothing visible after the timeout",
        || format!("{} is listed", show(name)),
    )
}

pub(super) fn time_2_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (mut c, _) = Conn::open(&addr, after(stall + Duration::from_secs(10)))?;
    let name = ctx.name("stalled");
    c.send("TIME-2", &put_line(10, PutMode::New, PutFlow::Wait, &name))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    c.send("TIME-2", &chunk(b"abcd"))?;
    let t = wait_timeout(ctx, &mut c, stall, "TIME-2")?;
    // Nothing visible, on that server.
    nothing_visible(&addr, &name)?;
    Ok(Done::PassWith(format!(
        "closed after {:.1} s",
        t.as_secs_f64()
    )))
}

pub(super) fn time_3_slow_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_with(
        &format!("idle <= {} s (--max-wait)", max_wait.as_secs()),
        |l| Duration::from_secs(l.idle) <= max_wait,
    )?;
    let idle = Duration::from_secs(g.limits().idle);
    let stall = Duration::from_secs(g.limits().stall);
    let gap = (stall / 3).min(Duration::from_millis(500));
    let total = idle + Duration::from_secs(1);
    // Slow, but twice as fast as an announced `min-rate` (TIME-9) from the first octet on.
    let size = g
        .min_rate()
        .map_or(8, |r| (r as f64 * total.as_secs_f64() * 2.0).ceil() as u64)
        .max(8);
    if size > g.limits().max_size {
        return Err(unimplemented(format!(
            "needs max-size >= {size} to send an upload at twice min-rate for idle+1 s"
        )));
    }
    let (mut c, _) = Conn::open(&addr, after(total * 2 + Duration::from_secs(10)))?;
    let name = ctx.name("slow");
    let data = pattern(size as usize, 12);
    c.send(
        "TIME-3",
        &put_line(size, PutMode::New, PutFlow::Wait, &name),
    )?;
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
            size,
            digest: Digest::of(&data),
        },
    )?;
    c.close()?;
    Ok(Done::PassWith(format!(
        "upload of {size} octets took {:.1} s with idle={} s",
        start.elapsed().as_secs_f64(),
        idle.as_secs()
    )))
}

pub(super) fn time_9_dripped_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    let max_wait = ctx.target.max_wait;
    let (addr, g) = ctx.server_greeting(
        &format!(
            "min-rate > 0 and stall <= {} s (--max-wait)",
            max_wait.as_secs()
        ),
        |g| g.min_rate().unwrap_or(0) > 0 && Duration::from_secs(g.limits().stall) <= max_wait,
    )?;
    let stall = Duration::from_secs(g.limits().stall);
    let rate = g.min_rate().unwrap_or(0);
    // Pieces at a quarter of min-rate, each well within the stall timeout of the last: only
    // TIME-9 can end this upload. The session must end once fewer than rate × (t − stall)
    // octets moved, that is soon after 4/3 stall; and not before stall (HELLO-7).
    let gap = (stall / 3).min(Duration::from_millis(500));
    let piece = (rate as f64 * gap.as_secs_f64() / 4.0) as usize;
    if piece == 0 {
        return Err(unimplemented(format!(
            "min-rate={rate} is too low to drip below it in pieces of at least one octet"
        )));
    }
    let size = g.limits().max_size.min(1 << 20);
    let limit = stall * 2 + Duration::from_secs(3);
    if (size as f64) < rate as f64 * limit.as_secs_f64() / 4.0 {
        return Err(unimplemented(format!(
            "needs max-size >= {} to drip an upload for {} s",
            (rate as f64 * limit.as_secs_f64() / 4.0).ceil(),
            limit.as_secs()
        )));
    }
    let (mut c, _) = Conn::open(&addr, after(limit + Duration::from_secs(10)))?;
    let name = ctx.name("dripped");
    c.send(
        "TIME-9",
        &put_line(size, PutMode::New, PutFlow::Wait, &name),
    )?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    let start = Instant::now();
    let mut head = format!("data {size}\n").into_bytes();
    head.resize(head.len() + piece, b'x');
    c.send("TIME-9", &head)?;
    let ended = loop {
        c.set_deadline(Instant::now() + gap);
        match c.read_more() {
            Some(true) => continue,
            Some(false) => break Some(start.elapsed()),
            None => {}
        }
        if start.elapsed() > limit {
            break None;
        }
        if !c.send_lenient(&vec![b'x'; piece]) {
            c.set_deadline(Instant::now() + Duration::from_secs(1));
            let _ = c.wait_closed();
            break Some(start.elapsed());
        }
    };
    let rest = String::from_utf8_lossy(c.buffered()).into_owned();
    let Some(t) = ended else {
        return Err(violation(
            "TIME-9",
            format!(
                "the session timed out soon after {:.1} s (min-rate={rate}, stall={} s, \
                 the upload moving at a quarter of min-rate)",
                stall.as_secs_f64() * 4.0 / 3.0,
                stall.as_secs()
            ),
            format!("still open after {:.1} s", limit.as_secs_f64()),
        ));
    };
    ensure(
        t + Duration::from_millis(500) >= stall,
        "HELLO-7",
        format!("no timeout before stall={} s", stall.as_secs()),
        || format!("closed after {:.1} s", t.as_secs_f64()),
    )?;
    let r = ensure(
        rest.starts_with("err 421"),
        "TIME-5",
        "err 421 timeout before the close",
        || format!("{rest:?}"),
    );
    ctx.soft(r)?;
    nothing_visible(&addr, &name)?;
    Ok(Done::PassWith(format!(
        "closed after {:.1} s (stall={} s, min-rate={rate})",
        t.as_secs_f64(),
        stall.as_secs()
    )))
}

/// How many pipelined gets of a 2 MiB file make more output than loopback socket buffers
/// hold, so that a server sending it to a client that does not read blocks in the middle.
pub(super) const GETS: usize = 12;

/// Uploads a 2 MiB file to the server at `addr` and sends [`GETS`] gets of it in one write;
/// returns the connection and the file, nothing of the replies read.
pub(super) fn gets_unread(ctx: &Ctx<'_>, addr: &Endpoint, base: &str) -> Res<(Conn, Vec<u8>)> {
    let name = ctx.name(base);
    let data = pattern(2 << 20, 21);
    let (mut c, _) = Conn::open(addr, ctx.deadline() + Duration::from_secs(30))?;
    c.put_ok("PUT-12", &name, PutMode::New, PutFlow::Wait, &data)?;
    let line = get_line(0, &name);
    c.send("PIPE-2", &line.repeat(GETS))?;
    Ok((c, data))
}

pub(super) fn time_2_slow_reader(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (mut c, data) = gets_unread(ctx, &addr, "slow-reader")?;
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

pub(super) fn time_2_stuck_reader(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, stall) = stall_server(ctx)?;
    let (c, data) = gets_unread(ctx, &addr, "stuck-reader")?;
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
