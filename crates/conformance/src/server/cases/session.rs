//! The end of a session, and read-only servers (sections 3.4 and 12).

use super::*;

pub(super) fn close_1_nothing_after(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn close_4_eof(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    c.shutdown_write();
    c.expect_closed("CLOSE-4", "EOF from the client (no bye)")?;
    let mut c = ctx.session()?;
    c.send("CLOSE-4", b"di")?;
    c.shutdown_write();
    c.expect_closed("CLOSE-4", "EOF inside a request line (no reply, no bye)")?;
    Ok(Done::Pass)
}

pub(super) fn close_5_half_close(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn close_6_linger(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn sec_10_read_only(ctx: &mut Ctx<'_>) -> Res<Done> {
    let addr = ctx.read_only()?;
    let deadline = ctx.deadline();
    let (mut c, g) = Conn::open(&addr, deadline)?;
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
