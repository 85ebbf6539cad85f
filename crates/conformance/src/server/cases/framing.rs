//! Lines and numbers on the wire (section 3.1, FRAME-*).

use super::*;

pub(super) fn frame_1_octet_writes(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn frame_1_one_write(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn frame_2_exact_limit(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn frame_2_too_long(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn frame_3_crlf(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn frame_4_utf8(ctx: &mut Ctx<'_>) -> Res<Done> {
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
pub(super) fn each_err(c: &mut Conn, req: &str, code: u16, lines: &[Vec<u8>]) -> Res<()> {
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

pub(super) fn frame_5_numbers(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn with_line(s: crate::case::Stop, line: &[u8]) -> crate::case::Stop {
    match s {
        crate::case::Stop::Violation(mut v) => {
            v.expected = format!("{} for {:?}", v.expected, show(line));
            crate::case::Stop::Violation(v)
        }
        other => other,
    }
}

pub(super) fn frame_7_variants(ctx: &mut Ctx<'_>) -> Res<Done> {
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
