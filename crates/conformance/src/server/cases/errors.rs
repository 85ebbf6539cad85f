//! Error replies: the codes a server sends and when (section 9).

use super::*;

pub(super) fn err_6_put_malformed(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn err_6_not_put(ctx: &mut Ctx<'_>) -> Res<Done> {
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
pub(super) fn sweep(ctx: &Ctx<'_>) -> Res<Vec<(Vec<u8>, u16, Reply)>> {
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

pub(super) fn err_1_sweep(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn err_7_text(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn err_8_after_502(ctx: &mut Ctx<'_>) -> Res<Done> {
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
