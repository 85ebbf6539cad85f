//! Timeouts (section 3.5, TIME-*).

use super::*;

pub(super) fn time_1_idle(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn stall_server(ctx: &Ctx<'_>) -> Res<(std::net::SocketAddr, Duration)> {
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
    let (mut c, _) = Conn::open(addr, after(stall + Duration::from_secs(10)))?;
    c.send("TIME-2", b"di")?;
    let t = wait_timeout(ctx, &mut c, stall, "TIME-2")?;
    Ok(Done::PassWith(format!(
        "closed after {:.1} s",
        t.as_secs_f64()
    )))
}

pub(super) fn time_2_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
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
pub(super) const GETS: usize = 12;

/// Uploads a 2 MiB file to the server at `addr` and sends [`GETS`] gets of it in one write;
/// returns the connection and the file, nothing of the replies read.
pub(super) fn gets_unread(
    ctx: &Ctx<'_>,
    addr: std::net::SocketAddr,
    base: &str,
) -> Res<(Conn, Vec<u8>)> {
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

pub(super) fn time_2_stuck_reader(ctx: &mut Ctx<'_>) -> Res<Done> {
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
