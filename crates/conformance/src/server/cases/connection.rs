//! Connection, greeting, versions and extensions (spec sections 2, 4 and 10).

use super::*;

pub(super) fn conn_4_greeting(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn conn_7_independent(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn conn_3_busy(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn hello_7_max_size(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn hello_7_max_eager(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn hello_8_defaults(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn ver_5_versions(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn ext_4_unlisted(ctx: &mut Ctx<'_>) -> Res<Done> {
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
