//! `dir` and `get` (sections 6.2 and 6.3) and the digest (section 7.3).

use super::*;

pub(super) fn get_1_absent(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn dir_2_in_progress(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn dir_4_order(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn dir_5_mtime(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn get_3_offsets(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn get_4_bad_offset(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn data_13_chunks(ctx: &mut Ctx<'_>) -> Res<Done> {
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

pub(super) fn sum_1_vectors(ctx: &mut Ctx<'_>) -> Res<Done> {
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
