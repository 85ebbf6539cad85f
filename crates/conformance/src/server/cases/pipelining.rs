//! Pipelined requests (section 8).

use super::*;

pub(super) fn pipe_1_fifty(ctx: &mut Ctx<'_>) -> Res<Done> {
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|i| (ctx.name(&format!("f{i}")), pattern(10 + i * 7, i as u8)))
        .collect();
    {
        let mut c = ctx.session()?;
        let mut w = Vec::new();
        for (n, d) in &files {
            w.extend(put_line(d.len() as u64, PutMode::New, PutFlow::Now, n));
            w.extend(payload_of(d));
        }
        c.send("PIPE-1", &w)?;
        for (_, d) in &files {
            c.expect_reply(
                "PUT-12",
                &Reply::PutOk {
                    size: d.len() as u64,
                    digest: Digest::of(d),
                },
            )?;
        }
        c.close()?;
    }
    #[derive(Clone)]
    enum Want {
        Get(Vec<u8>),
        Dir,
        Err(u16),
        Put(Vec<u8>),
    }
    let mut w = Vec::new();
    let mut wants = Vec::new();
    for i in 0..50usize {
        let (n, d) = &files[i % 5];
        match i % 7 {
            0 => {
                w.extend(get_line(0, n));
                wants.push(Want::Get(d.clone()));
            }
            1 => {
                w.extend_from_slice(b"dir\n");
                wants.push(Want::Dir);
            }
            2 => {
                w.extend(get_line(0, &ctx.name(&format!("absent{i}"))));
                wants.push(Want::Err(511));
            }
            3 => {
                let data = pattern(i, 11);
                w.extend(put_line(
                    i as u64,
                    PutMode::New,
                    PutFlow::Now,
                    &ctx.name(&format!("p{i}")),
                ));
                w.extend(payload_of(&data));
                wants.push(Want::Put(data));
            }
            4 => {
                w.extend_from_slice(b"get 0 a/b\n");
                wants.push(Want::Err(510));
            }
            5 => {
                w.extend(get_line(3, n));
                wants.push(Want::Get(d[3..].to_vec()));
            }
            _ => {
                w.extend_from_slice(b"no such request\n");
                wants.push(Want::Err(500));
            }
        }
    }
    w.extend_from_slice(b"close\n");
    let mut c = ctx.session()?;
    c.send("PIPE-1", &w)?;
    for (i, want) in wants.into_iter().enumerate() {
        let label = |s: &str| format!("reply {} of 50: {s}", i + 1);
        match want {
            Want::Get(d) => match c.read_get("PIPE-1", if i % 7 == 5 { 3 } else { 0 })? {
                GetReply::Ok { payload, .. } if payload.data == d => {}
                other => {
                    return Err(violation(
                        "PIPE-1",
                        label("ok get with the file's octets"),
                        other.show(),
                    ));
                }
            },
            Want::Dir => {
                c.read_dir("PIPE-1")?;
            }
            Want::Err(code) => {
                c.expect_err("PIPE-5", code)
                    .map_err(|s| with_line(s, label("").as_bytes()))?;
            }
            Want::Put(d) => {
                let r = c.reply("PIPE-1", &label("ok put"))?;
                let want = Reply::PutOk {
                    size: d.len() as u64,
                    digest: Digest::of(&d),
                };
                ensure(r == want, "PIPE-1", label(&show_reply(&want)), || {
                    show_reply(&r)
                })?;
            }
        }
    }
    c.expect_reply("CLOSE-1", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    Ok(Done::Pass)
}

/// Eager puts of `count` files (`base` + index, `size` + index·`step` octets) in chunks of
/// `piece` octets, all in one write; every reply must be the file's `ok put`, in order.
/// Returns the session and the files, for further checks.
pub(super) fn pipelined_puts(
    ctx: &Ctx<'_>,
    base: &str,
    count: usize,
    size: usize,
    step: usize,
    piece: usize,
) -> Res<(Conn, Vec<NamedFile>)> {
    let files: Vec<NamedFile> = (0..count)
        .map(|i| {
            let name = ctx.name(&format!("{base}{i:02}"));
            (name, pattern(size + i * step, i as u8))
        })
        .collect();
    let mut w = Vec::new();
    for (n, d) in &files {
        w.extend(put_line(d.len() as u64, PutMode::New, PutFlow::Now, n));
        for p in d.chunks(piece) {
            w.extend(chunk(p));
        }
        w.extend(end(d));
    }
    let mut c = ctx.session()?;
    c.send("PIPE-1", &w)?;
    for (i, (_, d)) in files.iter().enumerate() {
        let want = Reply::PutOk {
            size: d.len() as u64,
            digest: Digest::of(d),
        };
        let r = c.reply("PIPE-1", &format!("reply {} of {count}: ok put", i + 1))?;
        ensure(r == want, "PIPE-1", show_reply(&want), || {
            format!("reply {} of {count}: {}", i + 1, show_reply(&r))
        })?;
    }
    Ok((c, files))
}

pub(super) fn pipe_1_stream(ctx: &mut Ctx<'_>) -> Res<Done> {
    // Odd sizes and 10,000-octet chunks, so that frame heads straddle read boundaries.
    let (mut c, files) = pipelined_puts(ctx, "s", 48, 65_003, 11, 10_000)?;
    let (n, d) = &files[47];
    expect_content(&mut c, "PIPE-1", n, d)?;
    c.close()?;
    Ok(Done::Pass)
}

pub(super) fn pipe_1_tiny_chunks(ctx: &mut Ctx<'_>) -> Res<Done> {
    // Eight wire octets per file octet: most reads end inside a chunk head, which a server
    // must keep while it reads on, however much input has arrived before it.
    let (c, _) = pipelined_puts(ctx, "t", 16, 16_384, 1, 1)?;
    c.close()?;
    Ok(Done::Pass)
}

pub(super) fn pipe_1_effects(ctx: &mut Ctx<'_>) -> Res<Done> {
    let name = ctx.name("effects");
    let mut w = put_line(2, PutMode::New, PutFlow::Now, &name);
    w.extend(payload_of(b"v1"));
    w.extend(get_line(0, &name));
    w.extend(put_line(2, PutMode::Replace, PutFlow::Now, &name));
    w.extend(payload_of(b"v2"));
    w.extend(get_line(0, &name));
    let mut c = ctx.session()?;
    c.send("PIPE-1", &w)?;
    for v in [b"v1", b"v2"] {
        c.expect_reply(
            "PIPE-1",
            &Reply::PutOk {
                size: 2,
                digest: Digest::of(v),
            },
        )?;
        match c.read_get("PIPE-1", 0)? {
            GetReply::Ok { payload, .. } if payload.data == v => {}
            other => {
                return Err(violation(
                    "PIPE-1",
                    format!("ok get with {:?}, the put before it complete", show(v)),
                    other.show(),
                ));
            }
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

/// A file the case uploads: (name, content).
pub(super) type NamedFile = (Vec<u8>, Vec<u8>);
