//! File names (section 5).

use super::*;

/// Invalid names, each with the rule it breaks.
pub(super) fn invalid_names() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("NAME-2 empty", b"".to_vec()),
        ("NAME-2 256 octets", vec![b'n'; 256]),
        (
            "NAME-2 258 octets in 86 characters",
            "天".repeat(86).into_bytes(),
        ),
        ("NAME-1 not UTF-8", b"\xff\xfe.txt".to_vec()),
        ("NAME-1 overlong encoding", b"\xc0\xae\xc0\xae".to_vec()),
        ("NAME-1 surrogate", b"a\xed\xa0\x80".to_vec()),
        ("NAME-1 truncated sequence", b"a\xe5\xa4".to_vec()),
        ("NAME-3 U+0001", b"a\x01b".to_vec()),
        ("NAME-3 TAB", b"a\tb".to_vec()),
        ("NAME-3 DEL", b"a\x7fb".to_vec()),
        ("NAME-3 U+0085", b"a\xc2\x85b".to_vec()),
        ("NAME-3 CR inside", b"a\rb".to_vec()),
        ("NAME-3 slash", b"a/b".to_vec()),
        ("NAME-3 traversal", b"../x".to_vec()),
        ("NAME-3 absolute path", b"/etc/passwd".to_vec()),
        ("NAME-3 backslash", b"a\\b".to_vec()),
        ("NAME-3 backslash traversal", b"..\\x".to_vec()),
        ("NAME-4 dot", b".".to_vec()),
        ("NAME-4 dot dot", b"..".to_vec()),
        ("NAME-4 hidden", b".hidden".to_vec()),
        ("NAME-4 staging area", b".ferry-staging".to_vec()),
        ("NAME-4 leading space", b" lead".to_vec()),
        ("NAME-4 trailing space", b"trail ".to_vec()),
        ("NAME-4 only a space", b" ".to_vec()),
        ("NAME-5 e + U+0301", "cafe\u{301}.txt".as_bytes().to_vec()),
        (
            "NAME-5 U+212B ANGSTROM SIGN",
            "\u{212b}".as_bytes().to_vec(),
        ),
        (
            "NAME-5 decomposed Hangul",
            "\u{1100}\u{1161}".as_bytes().to_vec(),
        ),
    ]
}

pub(super) fn name_7_get(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    for (rule, name) in invalid_names() {
        c.send("NAME-7", &get_line(0, &name))?;
        match c.reply("NAME-7", "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    "NAME-7",
                    format!("err 510 for get of {:?} ({rule})", show(&name)),
                    show_reply(&other),
                ));
            }
        }
    }
    c.dir("ERR-5")?;
    c.close()?;
    Ok(Done::Pass)
}

pub(super) fn name_7_put_wait(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    for (rule, name) in invalid_names() {
        c.send("NAME-7", &put_line(3, PutMode::New, PutFlow::Wait, &name))?;
        match c.reply("NAME-7", "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    "NAME-7",
                    format!("err 510 for put wait of {:?} ({rule}), no go", show(&name)),
                    show_reply(&other),
                ));
            }
        }
    }
    c.dir("PUT-3")?;
    c.close()?;
    Ok(Done::Pass)
}

pub(super) fn put_9_bad_name(ctx: &mut Ctx<'_>) -> Res<Done> {
    let mut c = ctx.session()?;
    let mut w = Vec::new();
    let names = invalid_names();
    for (_, name) in &names {
        w.extend(put_line(5, PutMode::New, PutFlow::Now, name));
        w.extend(payload_of(b"dir\n\n"));
    }
    w.extend_from_slice(b"dir\n");
    c.send("PUT-9", &w)?;
    for (rule, name) in &names {
        match c.reply("PUT-9", "err 510")? {
            Reply::Err(e) if e.code == Code::BAD_NAME => {}
            other => {
                return Err(violation(
                    "PUT-9",
                    format!(
                        "err 510 for the eager put of {:?} ({rule}) after its payload",
                        show(name)
                    ),
                    show_reply(&other),
                ));
            }
        }
    }
    c.read_dir("PUT-9")?;
    c.close()?;
    Ok(Done::Pass)
}

pub(super) fn name_6_octets(ctx: &mut Ctx<'_>) -> Res<Done> {
    let files: [(&str, &[u8]); 4] = [
        ("Case.txt", b"upper"),
        ("case.txt", b"lower"),
        ("\u{e9}", b"nfc"),
        ("e", b"plain"),
    ];
    let mut c = ctx.session()?;
    for (n, data) in files {
        c.put_ok("NAME-6", &ctx.name(n), PutMode::New, PutFlow::Now, data)?;
    }
    for (n, data) in files {
        expect_content(&mut c, "NAME-6", &ctx.name(n), data)?;
    }
    for n in ["CASE.TXT", "case.TXT", "\u{c9}"] {
        match c.get("NAME-6", 0, &ctx.name(n))? {
            GetReply::Err(e) if e.code == Code::NOT_FOUND => {}
            other => {
                return Err(violation(
                    "NAME-6",
                    format!("err 511 for {n:?} (names are case-sensitive)"),
                    other.show(),
                ));
            }
        }
    }
    c.close()?;
    let names = listed(ctx)?;
    ensure(
        names.len() == 4,
        "NAME-6",
        "4 distinct files listed",
        || format!("{} listed", names.len()),
    )?;
    Ok(Done::Pass)
}
