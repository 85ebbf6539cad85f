//! `put` and upload payloads (sections 6.4 and 7).

use super::*;

pub(super) fn put_11_mismatch(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_15_abort(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_16_disconnect(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_12_atomic(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_13_race(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_2_too_large(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_3_refused_early(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_9_exists(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_8_eager_too_large(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn put_8_eager_disabled(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (addr, _) = ctx.server_with("max-eager=0", |l| l.max_eager == 0)?;
    let open = || Conn::open(&addr, ctx.deadline()).map(|(c, _)| c);
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

pub(super) fn put_19_no_resume(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("restart");
    let mut c = start_upload(ctx, &name, PutMode::New, 10, &chunk(b"0123"))?;
    c.send("PUT-15", b"abort 431 storage\n")?;
    c.expect_err("PUT-15", 434)?;
    c.put_ok("PUT-19", &name, PutMode::New, PutFlow::Wait, b"abcdefghij")?;
    expect_content(&mut c, "PUT-19", &name, b"abcdefghij")?;
    c.close()?;
    Ok(Done::Pass)
}

pub(super) fn data_5_framing(ctx: &mut Ctx<'_>) -> Res<Done> {
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
