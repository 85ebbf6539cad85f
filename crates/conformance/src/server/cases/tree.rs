//! The `tree` extension (spec section 17): `enable tree`, paths in `get` and `put`, `list`,
//! `mkdir`, `rmdir`, `delete` and `rename`.
//!
//! They run against the first server (main, then extras) whose greeting lists `tree` in
//! `ext`, and are `unimplemented` when none does; `server/TREE-2/1` needs a server that does
//! not list it, `server/TREE-13/1` a read-only one that does. Each case works in folders of
//! its own prefix (`cf<run>-<case>-…`), created with `mkdir`, and removes what it made at its
//! end (a failing case may leave its folders behind).

use ferry_wire::tree::{
    self as wire_tree, EntryKind, ListEntry, TreeReply, decode_list_entry, decode_tree_reply,
};
use ferry_wire::{ErrorReply, ExtName, decode_reply};

use super::*;

/// The tree cases: (id, title, requirements, body).
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "TREE-1/1",
        "enable tree: ok (twice, pipelined with a put by path); other extensions 503; before it get and put with a path get 510",
        &["TREE-1", "TREE-2", "TREE-5", "PUT-9"],
        tree_1_enable,
    ),
    (
        "TREE-2/1",
        "a server that does not list tree answers enable, list, mkdir, rmdir, delete and rename with 503; the session goes on",
        &["TREE-2", "TREE-1", "EXT-4"],
        tree_2_unlisted,
    ),
    (
        "TREE-3/1",
        "invalid paths in every request (empty names, leading or trailing /, .., hidden, 65 names, 1025 octets, not NFC): 510; 64 names and 1024 octets are valid",
        &["TREE-3", "TREE-8", "PUT-9"],
        tree_3_paths,
    ),
    (
        "TREE-5/1",
        "get and put by path: round trip, offsets, 512 for new; a missing folder or a file as folder: 511 and nothing created",
        &["TREE-5", "PUT-9"],
        tree_5_get_put,
    ),
    (
        "TREE-6/1",
        "list: direct and recursive entries sorted by octets (a, a b, a-, a/x, ä), relative paths, digests equal to the put's, `-` without digests",
        &["TREE-6", "TREE-7", "TREE-10"],
        tree_6_list,
    ),
    (
        "TREE-6/2",
        "list of a file: 518; of a missing folder: 511; an option twice or unknown: 500; the session goes on",
        &["TREE-6"],
        tree_6_errors,
    ),
    (
        "TREE-6/3",
        "an upload in progress into a folder is not listed (nor is the staging area); once committed it is",
        &["TREE-6", "TREE-5"],
        tree_6_in_progress,
    ),
    (
        "TREE-6/4",
        "a tree moved deeper than 64 names: a recursive listing leaves out what lies beyond the limit; moved back, it is listed again",
        &["TREE-6", "TREE-11"],
        tree_6_too_deep,
    ),
    (
        "TREE-8/1",
        "mkdir: ok and listed; again, or at a file: 512; missing parent, or a file as parent: 511",
        &["TREE-8"],
        tree_8_mkdir,
    ),
    (
        "TREE-9/1",
        "rmdir: a file or a subfolder inside: 517; a file: 518; missing: 511; empty: ok and gone",
        &["TREE-9"],
        tree_9_rmdir,
    ),
    (
        "TREE-10/1",
        "delete: ok and gone; a folder: 518; missing or a file as folder: 511",
        &["TREE-10"],
        tree_10_delete,
    ),
    (
        "TREE-11/1",
        "rename: a file across folders, a folder with its content; never replaces (512); into itself: 510; missing FROM or TO folder: 511",
        &["TREE-11"],
        tree_11_rename,
    ),
    (
        "TREE-11/2",
        "rename LEN: a LEN that does not end at a SP, 0, a leading zero, past the line: 500; FROM is exactly LEN octets; the session goes on",
        &["TREE-11"],
        tree_11_len,
    ),
    (
        "TREE-12/1",
        "each ok is already visible to a second session; pipelined tree requests are answered in order, each seeing the one before",
        &["TREE-12", "PIPE-1"],
        tree_12_visible,
    ),
    (
        "TREE-13/1",
        "read-only server: mkdir, rmdir, delete, rename get 514 after the path check (510); list works; nothing changes",
        &["TREE-13"],
        tree_13_read_only,
    ),
];

// ------------------------------------------------------------------ environment ---

/// Where the tree cases of a run work.
struct Env {
    ep: Endpoint,
    deadline: Instant,
    prefix: String,
}

/// The first server (main, then extras) whose greeting lists `tree`.
fn env(ctx: &Ctx<'_>) -> Res<Env> {
    let (ep, _) = ctx.server_greeting("`tree` in ext (section 17)", wire_tree::offered)?;
    Ok(Env {
        ep,
        deadline: ctx.deadline(),
        prefix: ctx.prefix.clone(),
    })
}

impl Env {
    /// A session, greeting read.
    fn open(&self) -> Res<Conn> {
        Ok(Conn::open(&self.ep, self.deadline)?.0)
    }

    /// A session that sent `enable tree` and got `ok enable tree`.
    fn enabled(&self) -> Res<Conn> {
        let mut c = self.open()?;
        c.send("TREE-1", b"enable tree\n")?;
        expect_ok(&mut c, "TREE-1", &enabled_reply(), "enable tree")?;
        Ok(c)
    }

    /// The case's path for `rest`: its prefix, then `rest`.
    fn p(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }
}

pub(in crate::server) fn enabled_reply() -> TreeReply {
    TreeReply::Enabled(ExtName::new(wire_tree::EXTENSION).expect("tree is an ext-name"))
}

// ------------------------------------------------------------------ messages ---

/// An answer to a request of the extension: one of its replies, or one of ferry/1's
/// (`err`, and `ok get`/`ok put`/`go`).
#[derive(Debug)]
enum Answer {
    Tree(TreeReply),
    Ferry(Reply),
}

impl Answer {
    fn show(&self) -> String {
        match self {
            Answer::Tree(r) => show(r.encode().strip_suffix(b"\n").unwrap_or(&[])).into(),
            Answer::Ferry(r) => show_reply(r),
        }
    }

    fn code(&self) -> Option<u16> {
        match self {
            Answer::Ferry(Reply::Err(e)) => Some(e.code.get()),
            _ => None,
        }
    }
}

/// Reads one reply line: the extension's (`ext-reply`) or ferry/1's.
fn answer(c: &mut Conn, req: &str, expected: &str) -> Res<Answer> {
    let line = c.server_line(req, expected)?;
    if let Ok((r, _)) = decode_tree_reply(&line) {
        return Ok(Answer::Tree(r));
    }
    match decode_reply(&line) {
        Ok((r, _)) => {
            if let Reply::Err(e) = &r {
                c.check_code(e)?;
            }
            Ok(Answer::Ferry(r))
        }
        Err(e) => Err(violation(
            "FRAME-6",
            format!("a reply line that matches `reply` or `ext-reply` (waiting for {expected})"),
            format!("{:?}: {e}", show(&line)),
        )),
    }
}

/// Reads a reply that must be `want`, the answer to `what`.
pub(in crate::server) fn expect_ok(
    c: &mut Conn,
    req: &str,
    want: &TreeReply,
    what: &str,
) -> Res<()> {
    let expected = format!(
        "{} for {what:?}",
        Answer::Tree(want.clone()).show().trim_end()
    );
    let got = answer(c, req, &expected)?;
    match &got {
        Answer::Tree(r) if r == want => Ok(()),
        _ => Err(violation(req, expected, got.show())),
    }
}

/// Reads a reply that must be `err CODE`, the answer to `what`.
fn expect_code(c: &mut Conn, req: &str, code: u16, what: &str) -> Res<()> {
    let expected = format!("err {code} for {what:?}");
    let got = answer(c, req, &expected)?;
    ensure(got.code() == Some(code), req, expected, || got.show())
}

/// `VERB PATH` and LF.
pub(in crate::server) fn line(verb: &str, path: &str) -> Vec<u8> {
    format!("{verb} {path}\n").into_bytes()
}

/// `rename LEN FROM TO` and LF, LEN right.
pub(super) fn rename_line(from: &str, to: &str) -> Vec<u8> {
    format!("rename {} {from} {to}\n", from.len()).into_bytes()
}

/// `list OPTS FOLDER` and LF.
pub(super) fn list_line(opts: &str, folder: &str) -> Vec<u8> {
    format!("list {opts} {folder}\n").into_bytes()
}

/// Sends `l` (a request line) and expects `want`.
pub(in crate::server) fn ok(c: &mut Conn, req: &str, l: &[u8], want: TreeReply) -> Res<()> {
    c.send(req, l)?;
    expect_ok(c, req, &want, &shown_line(l))
}

/// Sends `l` and expects `err CODE`.
pub(super) fn refused(c: &mut Conn, req: &str, l: &[u8], code: u16) -> Res<()> {
    c.send(req, l)?;
    expect_code(c, req, code, &shown_line(l))
}

fn shown_line(l: &[u8]) -> String {
    show(l.strip_suffix(b"\n").unwrap_or(l)).into()
}

pub(in crate::server) fn mkdir(c: &mut Conn, req: &str, path: &str) -> Res<()> {
    ok(c, req, &line("mkdir", path), TreeReply::Mkdir)
}

/// A put by path (the session enabled `tree`) that must succeed.
pub(super) fn put(c: &mut Conn, path: &str, data: &[u8]) -> Res<()> {
    c.put_ok("TREE-5", path.as_bytes(), PutMode::New, PutFlow::Wait, data)
}

// ------------------------------------------------------------------- listings ---

/// `list OPTS FOLDER` and its answer: the entries (read strictly, checked for order, and
/// for `-` digests without `digests`), or the `err`.
fn list(
    c: &mut Conn,
    req: &str,
    opts: &str,
    folder: &str,
) -> Res<Result<Vec<ListEntry>, ErrorReply>> {
    let l = list_line(opts, folder);
    c.send(req, &l)?;
    read_list(c, req, opts.contains("digests"), &shown_line(&l))
}

/// The answer to a `list` already sent.
fn read_list(
    c: &mut Conn,
    req: &str,
    digests: bool,
    what: &str,
) -> Res<Result<Vec<ListEntry>, ErrorReply>> {
    let expected = format!("ok list COUNT, or err, for {what:?}");
    let count = match answer(c, req, &expected)? {
        Answer::Tree(TreeReply::ListOk { count }) => count,
        Answer::Ferry(Reply::Err(e)) => return Ok(Err(e)),
        other => return Err(violation(req, expected, other.show())),
    };
    let mut entries: Vec<ListEntry> = Vec::new();
    for i in 0..count {
        let l = c.server_line(
            "TREE-6",
            &format!("entry line {} of {count} of {what:?}", i + 1),
        )?;
        let e = match decode_list_entry(&l) {
            Ok((e, _)) => e,
            Err(err) => {
                return Err(violation(
                    "TREE-6",
                    "entry lines `f SIZE MTIME DIGEST PATH` or `d - MTIME - PATH` with valid paths",
                    format!("{:?}: {err}", show(&l)),
                ));
            }
        };
        if let Some(prev) = entries.last() {
            ensure(
                prev.path.as_bytes() < e.path.as_bytes(),
                "TREE-6",
                format!("entries of {what:?} in ascending order of their paths' octets, each once"),
                || {
                    format!(
                        "{:?} listed after {:?}",
                        e.path.as_str(),
                        prev.path.as_str()
                    )
                },
            )?;
        }
        if !digests {
            ensure(
                !matches!(
                    e.kind,
                    EntryKind::File {
                        digest: Some(_),
                        ..
                    }
                ),
                "TREE-7",
                format!("DIGEST `-` in every entry of {what:?} (no `digests` asked)"),
                || shown_line(&l),
            )?;
        }
        entries.push(e);
    }
    Ok(Ok(entries))
}

/// A `list` that must succeed.
pub(super) fn list_ok(c: &mut Conn, req: &str, opts: &str, folder: &str) -> Res<Vec<ListEntry>> {
    match list(c, req, opts, folder)? {
        Ok(v) => Ok(v),
        Err(e) => Err(violation(
            req,
            format!("ok list for `list {opts} {folder}`"),
            show_reply(&Reply::Err(e)),
        )),
    }
}

/// An entry as the cases compare them: `d PATH` or `f SIZE PATH`.
fn shape(e: &ListEntry) -> String {
    match e.kind {
        EntryKind::File { size, .. } => format!("f {size} {}", e.path.as_str()),
        EntryKind::Folder => format!("d {}", e.path.as_str()),
    }
}

/// Checks that `got` has exactly the entries `want` (as [`shape`]s, in order).
fn expect_entries(req: &str, what: &str, got: &[ListEntry], want: &[String]) -> Res<()> {
    let shapes: Vec<String> = got.iter().map(shape).collect();
    ensure(shapes == want, req, format!("{what}: {want:?}"), || {
        format!("{shapes:?}")
    })
}

/// `list OPTS FOLDER` that must succeed with exactly `want`.
fn expect_listing(c: &mut Conn, req: &str, opts: &str, folder: &str, want: &[&str]) -> Res<()> {
    let got = list_ok(c, req, opts, folder)?;
    let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    expect_entries(
        req,
        &format!("the entries of `list {opts} {folder}`"),
        &got,
        &want,
    )
}

/// Removes `folder` and everything in it, as far as the server lets it (best effort: the
/// case's verdict does not depend on it).
fn remove_tree(env: &Env, folder: &str) {
    let _ = (|| -> Res<()> {
        let mut c = env.open()?;
        let entries = list_ok(&mut c, "TREE-9", "recursive", folder)?;
        let mut batch = Vec::new();
        // Reverse octet order puts every path before its folder.
        for e in entries.iter().rev() {
            let full = format!("{folder}/{}", e.path.as_str());
            batch.extend(match e.kind {
                EntryKind::File { .. } => line("delete", &full),
                EntryKind::Folder => line("rmdir", &full),
            });
        }
        batch.extend(line("rmdir", folder));
        c.send("TREE-9", &batch)?;
        for _ in 0..=entries.len() {
            answer(&mut c, "TREE-9", "the answer to a cleanup request")?;
        }
        c.close()
    })();
}

/// A file's content, by path, that must be `want`.
fn expect_file(c: &mut Conn, req: &str, path: &str, want: &[u8]) -> Res<()> {
    expect_content(c, req, path.as_bytes(), want)
}

/// A get by path that must be answered `err CODE`.
fn expect_get_err(c: &mut Conn, req: &str, path: &str, code: u16) -> Res<()> {
    match c.get(req, 0, path.as_bytes())? {
        GetReply::Err(e) if e.code.get() == code => Ok(()),
        other => Err(violation(
            req,
            format!("err {code} for `get 0 {path}`"),
            other.show(),
        )),
    }
}

// ---------------------------------------------------------------------- cases ---

fn tree_1_enable(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("e");
    let f = format!("{d}/f");
    let mut c = env.open()?;
    // TREE-2: the extension's own requests need no enable.
    mkdir(&mut c, "TREE-2", &d)?;
    // Before `ok enable tree`, get and put are ferry/1's: a `/` is 510.
    c.send("TREE-2", &get_line(0, f.as_bytes()))?;
    expect_code(
        &mut c,
        "TREE-2",
        510,
        &format!("get 0 {f} (before enable tree)"),
    )?;
    c.send(
        "TREE-2",
        &put_line(3, PutMode::New, PutFlow::Wait, f.as_bytes()),
    )?;
    expect_code(
        &mut c,
        "TREE-2",
        510,
        &format!("put 3 new wait {f} (before enable tree)"),
    )?;
    let mut w = put_line(3, PutMode::New, PutFlow::Now, f.as_bytes());
    w.extend(payload_of(b"abc"));
    w.extend(list_line("-", &d));
    c.send("PUT-9", &w)?;
    expect_code(
        &mut c,
        "TREE-2",
        510,
        &format!("put 3 new now {f} (before enable tree)"),
    )?;
    let l = read_list(&mut c, "PUT-9", false, &format!("list - {d}"))?;
    match l {
        Ok(entries) => expect_entries(
            "TREE-2",
            "nothing stored by the refused puts",
            &entries,
            &[],
        )?,
        Err(e) => {
            return Err(violation(
                "PUT-9",
                format!("the refused eager put's payload discarded, then ok list for `list - {d}`"),
                show_reply(&Reply::Err(e)),
            ));
        }
    }
    // Other extensions: nothing to enable.
    for other in ["x-nope", "auth", "tls"] {
        refused(
            &mut c,
            "TREE-1",
            format!("enable {other}\n").as_bytes(),
            503,
        )?;
    }
    // Twice, pipelined with a put by path right behind it.
    let mut w = b"enable tree\nenable tree\n".to_vec();
    w.extend(put_line(5, PutMode::New, PutFlow::Now, f.as_bytes()));
    w.extend(payload_of(b"hello"));
    c.send("TREE-1", &w)?;
    expect_ok(&mut c, "TREE-1", &enabled_reply(), "enable tree")?;
    expect_ok(&mut c, "TREE-1", &enabled_reply(), "enable tree (again)")?;
    let want = Reply::PutOk {
        size: 5,
        digest: Digest::of(b"hello"),
    };
    let got = c.reply("TREE-5", &show_reply(&want))?;
    ensure(
        got == want,
        "TREE-5",
        format!("{} for the put of {f}", show_reply(&want)),
        || show_reply(&got),
    )?;
    expect_file(&mut c, "TREE-5", &f, b"hello")?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_2_unlisted(ctx: &mut Ctx<'_>) -> Res<Done> {
    let (ep, _) = ctx.server_greeting(
        "an `ext` without `tree` (a server that does not offer section 17, such as `ferry serve --no-tree`)",
        |g| !wire_tree::offered(g),
    )?;
    let (mut c, _) = Conn::open(&ep, ctx.deadline())?;
    let x = ctx.name("x");
    let y = ctx.name("y");
    let (x, y) = (
        String::from_utf8_lossy(&x).into_owned(),
        String::from_utf8_lossy(&y).into_owned(),
    );
    let requests = [
        b"enable tree\n".to_vec(),
        list_line("-", "."),
        list_line("digests,recursive", &x),
        line("mkdir", &x),
        line("rmdir", &x),
        line("delete", &x),
        rename_line(&x, &y),
    ];
    let mut w = Vec::new();
    for r in &requests {
        w.extend_from_slice(r);
    }
    c.send("TREE-2", &w)?;
    for r in &requests {
        expect_code(&mut c, "TREE-2", 503, &shown_line(r))?;
    }
    let p = format!("{x}/{y}");
    c.send("TREE-2", &get_line(0, p.as_bytes()))?;
    expect_code(&mut c, "TREE-2", 510, &format!("get 0 {p}"))?;
    c.dir("EXT-4")?;
    c.close()?;
    Ok(Done::Pass)
}

/// `folder` followed by names of 200 octets, then one name that makes the path exactly
/// `total` octets long; `total` must leave room for at least one more name.
fn long_path(folder: &str, total: usize) -> (Vec<String>, String) {
    let mut parents = Vec::new();
    let mut p = folder.to_owned();
    while total - p.len() > 255 {
        p = format!("{p}/{}", "a".repeat(200));
        parents.push(p.clone());
    }
    let last = total - p.len() - 1;
    (parents, format!("{p}/{}", "b".repeat(last)))
}

fn tree_3_paths(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("p");
    let g = format!("{d}/g");
    let mut c = env.enabled()?;
    mkdir(&mut c, "TREE-8", &d)?;
    put(&mut c, &g, b"g")?;
    let mut deep = d.clone();
    for _ in 0..64 {
        deep.push_str("/a");
    }
    let (_, too_long) = long_path(&d, 1025);
    let bad = [
        format!("{d}//x"),
        format!("/{d}"),
        format!("{d}/"),
        format!("{d}/../x"),
        format!("{d}/./x"),
        format!("{d}/.h"),
        format!("{d}/x\\y"),
        format!("{d}/e\u{301}"),
        deep.clone(),
        too_long,
    ];
    for b in &bad {
        let mut requests = vec![
            get_line(0, b.as_bytes()),
            put_line(3, PutMode::New, PutFlow::Wait, b.as_bytes()),
            line("mkdir", b),
            line("rmdir", b),
            line("delete", b),
            list_line("-", b),
            rename_line(&g, b),
        ];
        if b.len() <= 1024 {
            requests.push(rename_line(b, &format!("{d}/new")));
        }
        let mut w = Vec::new();
        for r in &requests {
            w.extend_from_slice(r);
        }
        c.send("TREE-3", &w)?;
        for r in &requests {
            expect_code(&mut c, "TREE-3", 510, &shown_line(r))?;
        }
        // An eager put: its payload is read and discarded, then 510.
        let mut w = put_line(3, PutMode::New, PutFlow::Now, b.as_bytes());
        w.extend(payload_of(b"abc"));
        c.send("PUT-9", &w)?;
        expect_code(
            &mut c,
            "TREE-3",
            510,
            &format!("put 3 new now {}", show(b.as_bytes())),
        )?;
    }
    expect_listing(&mut c, "TREE-3", "-", &d, &["f 1 g"])?;
    expect_file(&mut c, "TREE-3", &g, b"g")?;
    // At the limits: 64 names, 1024 octets are paths.
    let mut chain = Vec::new();
    let mut p = d.clone();
    for _ in 0..63 {
        p.push_str("/a");
        chain.push(p.clone());
    }
    let mut w = Vec::new();
    for p in &chain {
        w.extend(line("mkdir", p));
    }
    c.send("TREE-3", &w)?;
    for p in &chain {
        expect_ok(
            &mut c,
            "TREE-3",
            &TreeReply::Mkdir,
            &format!("mkdir of a path of {} names", p.split('/').count()),
        )?;
    }
    let (parents, exact) = long_path(&d, 1024);
    for p in &parents {
        mkdir(&mut c, "TREE-3", p)?;
    }
    put(&mut c, &exact, b"1024")?;
    expect_file(&mut c, "TREE-3", &exact, b"1024")?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_5_get_put(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("f");
    let sub = format!("{d}/sub");
    let x = format!("{sub}/x.bin");
    let data = pattern(3000, 5);
    let mut c = env.enabled()?;
    mkdir(&mut c, "TREE-8", &d)?;
    mkdir(&mut c, "TREE-8", &sub)?;
    put(&mut c, &x, &data)?;
    expect_file(&mut c, "TREE-5", &x, &data)?;
    match c.get("TREE-5", 1000, x.as_bytes())? {
        GetReply::Ok { size, payload, .. } => {
            ensure(
                size == 3000
                    && payload.data == data[1000..]
                    && payload.trailer == Trailer::End(Digest::of(&data)),
                "TREE-5",
                format!(
                    "ok get 3000, the octets from 1000 on and the whole file's digest for `get 1000 {x}`"
                ),
                || {
                    format!(
                        "ok get {size}, {} octets, {}",
                        payload.data.len(),
                        payload.trailer.show()
                    )
                },
            )?;
        }
        other => {
            return Err(violation(
                "TREE-5",
                format!("ok get for `get 1000 {x}`"),
                other.show(),
            ));
        }
    }
    let got = c.put(
        "TREE-5",
        x.as_bytes(),
        PutMode::New,
        PutFlow::Wait,
        b"other",
    )?;
    ensure(
        matches!(&got, Reply::Err(e) if e.code == Code::EXISTS),
        "TREE-5",
        format!("err 512 for `put 5 new wait {x}` (it exists)"),
        || show_reply(&got),
    )?;
    c.put_ok(
        "TREE-5",
        x.as_bytes(),
        PutMode::Replace,
        PutFlow::Now,
        b"new",
    )?;
    expect_file(&mut c, "TREE-5", &x, b"new")?;
    // A folder that does not exist, a file used as a folder: 511, for eager and wait puts.
    let missing = format!("{d}/missing/y");
    let through_file = format!("{x}/y");
    for p in [&missing, &through_file] {
        let mut w = put_line(3, PutMode::New, PutFlow::Now, p.as_bytes());
        w.extend(payload_of(b"abc"));
        c.send("TREE-5", &w)?;
        expect_code(&mut c, "TREE-5", 511, &format!("put 3 new now {p}"))?;
        c.send(
            "TREE-5",
            &put_line(3, PutMode::New, PutFlow::Wait, p.as_bytes()),
        )?;
        let what = format!("put 3 new wait {p}");
        match answer(
            &mut c,
            "TREE-5",
            &format!("err 511 (or go, then err 511) for {what:?}"),
        )? {
            Answer::Ferry(Reply::Go) => {
                c.send("TREE-5", &payload_of(b"abc"))?;
                expect_code(&mut c, "TREE-5", 511, &what)?;
            }
            a if a.code() == Some(511) => {}
            other => {
                return Err(violation(
                    "TREE-5",
                    format!("err 511 for {what:?}"),
                    other.show(),
                ));
            }
        }
        expect_get_err(&mut c, "TREE-5", p, 511)?;
    }
    // A folder is not a file.
    expect_get_err(&mut c, "TREE-5", &sub, 511)?;
    expect_listing(
        &mut c,
        "TREE-5",
        "recursive",
        &d,
        &["d sub", "f 3 sub/x.bin"],
    )?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_6_list(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("l");
    let top = env.p("l.txt");
    let files: [(&str, &[u8]); 5] = [
        ("a b", b"1"),
        ("a-", b"22"),
        ("\u{e4}", b"333"),
        ("a/x", b"4444"),
        ("a/y z", b""),
    ];
    let mut c = env.enabled()?;
    mkdir(&mut c, "TREE-8", &d)?;
    mkdir(&mut c, "TREE-8", &format!("{d}/a"))?;
    for (name, data) in files {
        put(&mut c, &format!("{d}/{name}"), data)?;
    }
    put(&mut c, &top, b"top")?;
    // Direct entries, sorted by octets: `a` < `a b` < `a-` < `ä`.
    let direct = ["d a", "f 1 a b", "f 2 a-", "f 3 \u{e4}"];
    expect_listing(&mut c, "TREE-6", "-", &d, &direct)?;
    // Recursive: `a/x` after `a-` (0x2f > 0x2d), not right after `a`.
    let all = [
        "d a",
        "f 1 a b",
        "f 2 a-",
        "f 4 a/x",
        "f 0 a/y z",
        "f 3 \u{e4}",
    ];
    expect_listing(&mut c, "TREE-6", "recursive", &d, &all)?;
    expect_listing(
        &mut c,
        "TREE-6",
        "-",
        &format!("{d}/a"),
        &["f 4 x", "f 0 y z"],
    )?;
    // Digests: what a get would end with, the put's.
    for opts in ["digests", "digests,recursive", "recursive,digests"] {
        let got = list_ok(&mut c, "TREE-6", opts, &d)?;
        let want: &[&str] = if opts == "digests" { &direct } else { &all };
        let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
        expect_entries(
            "TREE-6",
            &format!("the entries of `list {opts} {d}`"),
            &got,
            &want,
        )?;
        for e in &got {
            if let EntryKind::File { digest, .. } = e.kind {
                let data = files
                    .iter()
                    .find(|(n, _)| *n == e.path.as_str())
                    .map_or(&b""[..], |(_, d)| *d);
                ensure(
                    digest == Some(Digest::of(data)),
                    "TREE-7",
                    format!(
                        "DIGEST {} for {:?} (its content, unchanged since its put) in `list {opts} {d}`",
                        Digest::of(data),
                        e.path.as_str()
                    ),
                    || digest.map_or("-".to_owned(), |d| d.to_string()),
                )?;
            }
        }
    }
    // The served folder: its folders and the files `dir` lists.
    let root = list_ok(&mut c, "TREE-6", "-", ".")?;
    let mine: Vec<String> = root
        .iter()
        .filter(|e| e.path.as_str().starts_with(&env.prefix))
        .map(shape)
        .collect();
    let want = vec![format!("d {d}"), format!("f 3 {top}")];
    ensure(
        mine == want,
        "TREE-6",
        format!("the case's entries of `list - .`: {want:?}"),
        || format!("{mine:?}"),
    )?;
    let dir: Vec<String> = c
        .dir("TREE-6")?
        .into_iter()
        .filter(|e| e.name.as_str().starts_with(&env.prefix))
        .map(|e| format!("f {} {}", e.size, e.name.as_str()))
        .collect();
    let listed_files: Vec<String> = mine
        .iter()
        .filter(|s| s.starts_with("f "))
        .cloned()
        .collect();
    ensure(
        dir == listed_files,
        "TREE-6",
        format!("the files of `list - .` are those of `dir`: {dir:?}"),
        || format!("{listed_files:?}"),
    )?;
    let rec = list_ok(&mut c, "TREE-6", "recursive", ".")?;
    let mine: Vec<String> = rec
        .iter()
        .filter(|e| e.path.as_str().starts_with(&env.prefix))
        .map(shape)
        .collect();
    // `…l.txt` sorts before `…l/a` (0x2e < 0x2f).
    let mut want = vec![format!("d {d}"), format!("f 3 {top}")];
    want.extend(all.iter().map(|s| {
        let (kind, rest) = s.split_at(2);
        let (size, path) = if kind == "d " {
            (String::new(), rest)
        } else {
            let (n, p) = rest.split_once(' ').unwrap_or((rest, ""));
            (format!("{n} "), p)
        };
        format!("{kind}{size}{d}/{path}")
    }));
    ensure(
        mine == want,
        "TREE-6",
        format!("the case's entries of `list recursive .`: {want:?}"),
        || format!("{mine:?}"),
    )?;
    ok(&mut c, "TREE-10", &line("delete", &top), TreeReply::Delete)?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_6_errors(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("le");
    let f = format!("{d}/f");
    let mut c = env.open()?;
    mkdir(&mut c, "TREE-8", &d)?;
    mkdir(&mut c, "TREE-8", &format!("{d}/s"))?;
    c.send("TREE-1", b"enable tree\n")?;
    expect_ok(&mut c, "TREE-1", &enabled_reply(), "enable tree")?;
    put(&mut c, &f, b"f")?;
    let cases: [(Vec<u8>, u16); 11] = [
        (list_line("-", &f), 518),
        (list_line("recursive", &f), 518),
        (list_line("-", &env.p("le-missing")), 511),
        (list_line("-", &format!("{d}/missing")), 511),
        (list_line("-", &format!("{f}/x")), 511),
        (list_line("digests,digests", &d), 500),
        (list_line("recursive,digests,recursive", &d), 500),
        (list_line("digests,", &d), 500),
        (list_line("DIGESTS", &d), 500),
        (list_line("sizes", &d), 500),
        (format!("list {d}\n").into_bytes(), 500),
    ];
    let mut w = Vec::new();
    for (l, _) in &cases {
        w.extend_from_slice(l);
    }
    c.send("TREE-6", &w)?;
    for (l, code) in &cases {
        expect_code(&mut c, "TREE-6", *code, &shown_line(l))?;
    }
    expect_listing(&mut c, "TREE-6", "-", &d, &["f 1 f", "d s"])?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_6_in_progress(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("u");
    let f = format!("{d}/f");
    let data = pattern(10, 6);
    let mut a = env.enabled()?;
    mkdir(&mut a, "TREE-8", &d)?;
    a.send(
        "TREE-5",
        &put_line(10, PutMode::New, PutFlow::Wait, f.as_bytes()),
    )?;
    a.expect_reply("PUT-3", &Reply::Go)?;
    let mut head = b"data 10\n".to_vec();
    head.extend_from_slice(&data[..5]);
    a.send("TREE-5", &head)?;
    let mut b = env.open()?;
    expect_listing(&mut b, "TREE-6", "recursive", &d, &[])?;
    // The served folder's listing is read strictly: a `.ferry-staging` entry is no valid path.
    list_ok(&mut b, "TREE-6", "recursive", ".")?;
    let mut rest = data[5..].to_vec();
    rest.extend(end(&data));
    a.send("TREE-5", &rest)?;
    let want = Reply::PutOk {
        size: 10,
        digest: Digest::of(&data),
    };
    let got = a.reply("TREE-5", &show_reply(&want))?;
    ensure(got == want, "TREE-5", show_reply(&want), || {
        show_reply(&got)
    })?;
    expect_listing(&mut b, "TREE-6", "recursive", &d, &["f 10 f"])?;
    b.close()?;
    a.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_6_too_deep(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("deep");
    let h = env.p("high");
    let mut c = env.enabled()?;
    // d and 62 folders `a` under it: 63 names; a file in the deepest: 64.
    let mut chain = vec![d.clone()];
    for _ in 0..62 {
        let next = format!("{}/a", chain[chain.len() - 1]);
        chain.push(next);
    }
    let mut w = Vec::new();
    for p in &chain {
        w.extend(line("mkdir", p));
    }
    c.send("TREE-8", &w)?;
    for p in &chain {
        expect_ok(&mut c, "TREE-8", &TreeReply::Mkdir, &format!("mkdir {p}"))?;
    }
    let f = format!("{}/f", chain[chain.len() - 1]);
    put(&mut c, &f, b"deep")?;
    let all = list_ok(&mut c, "TREE-6", "recursive", &d)?;
    ensure(
        all.len() == 63,
        "TREE-6",
        format!("63 entries (62 folders and the file at 64 names) in `list recursive {d}`"),
        || format!("{} entries", all.len()),
    )?;
    // Moved two levels down: the file is at 66 names, the deepest folder at 65.
    mkdir(&mut c, "TREE-8", &h)?;
    mkdir(&mut c, "TREE-8", &format!("{h}/x"))?;
    let moved = format!("{h}/x/d");
    ok(
        &mut c,
        "TREE-11",
        &rename_line(&d, &moved),
        TreeReply::Rename,
    )?;
    let listed = list_ok(&mut c, "TREE-6", "recursive", &h)?;
    let too_deep: Vec<&str> = listed
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| p.split('/').count() + 1 > 64)
        .collect();
    ensure(
        too_deep.is_empty(),
        "TREE-6",
        format!(
            "no entry of `list recursive {h}` whose path from the served folder has more than 64 names"
        ),
        || {
            format!(
                "{} such entries, the first {:?}",
                too_deep.len(),
                too_deep[0]
            )
        },
    )?;
    // x, x/d and the folders `a` down to 64 names (61 of them).
    ensure(
        listed.len() == 63 && listed.iter().all(|e| e.kind == EntryKind::Folder),
        "TREE-6",
        format!("63 folders in `list recursive {h}` (down to 64 names, nothing deeper)"),
        || format!("{} entries", listed.len()),
    )?;
    let mut at_limit = moved.clone();
    for _ in 0..61 {
        at_limit.push_str("/a");
    }
    expect_listing(&mut c, "TREE-6", "recursive", &at_limit, &[])?;
    // Back where it was: all of it again.
    ok(
        &mut c,
        "TREE-11",
        &rename_line(&moved, &d),
        TreeReply::Rename,
    )?;
    let again = list_ok(&mut c, "TREE-6", "recursive", &d)?;
    ensure(
        again.len() == 63,
        "TREE-6",
        format!("the 63 entries of `list recursive {d}` again after the move back"),
        || format!("{} entries", again.len()),
    )?;
    expect_file(&mut c, "TREE-6", &f, b"deep")?;
    c.close()?;
    remove_tree(&env, &d);
    remove_tree(&env, &h);
    Ok(Done::Pass)
}

fn tree_8_mkdir(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("m");
    let f = format!("{d}/f");
    let mut c = env.enabled()?;
    mkdir(&mut c, "TREE-8", &d)?;
    refused(&mut c, "TREE-8", &line("mkdir", &d), 512)?;
    put(&mut c, &f, b"f")?;
    refused(&mut c, "TREE-8", &line("mkdir", &f), 512)?;
    mkdir(&mut c, "TREE-8", &format!("{d}/x"))?;
    refused(&mut c, "TREE-8", &line("mkdir", &format!("{d}/x")), 512)?;
    refused(&mut c, "TREE-8", &line("mkdir", &format!("{d}/y/z")), 511)?;
    refused(&mut c, "TREE-8", &line("mkdir", &format!("{f}/z")), 511)?;
    refused(
        &mut c,
        "TREE-8",
        &line("mkdir", &format!("{}/z", env.p("m-missing"))),
        511,
    )?;
    expect_listing(&mut c, "TREE-8", "recursive", &d, &["f 1 f", "d x"])?;
    expect_file(&mut c, "TREE-8", &f, b"f")?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_9_rmdir(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("r");
    let mut c = env.enabled()?;
    for p in ["", "/e", "/n", "/s", "/s/t"] {
        mkdir(&mut c, "TREE-8", &format!("{d}{p}"))?;
    }
    put(&mut c, &format!("{d}/n/f"), b"kept")?;
    refused(&mut c, "TREE-9", &line("rmdir", &format!("{d}/n")), 517)?;
    refused(&mut c, "TREE-9", &line("rmdir", &format!("{d}/s")), 517)?;
    refused(&mut c, "TREE-9", &line("rmdir", &format!("{d}/n/f")), 518)?;
    refused(&mut c, "TREE-9", &line("rmdir", &format!("{d}/none")), 511)?;
    refused(&mut c, "TREE-9", &line("rmdir", &format!("{d}/n/f/x")), 511)?;
    ok(
        &mut c,
        "TREE-9",
        &line("rmdir", &format!("{d}/e")),
        TreeReply::Rmdir,
    )?;
    refused(&mut c, "TREE-9", &line("rmdir", &format!("{d}/e")), 511)?;
    let mut other = env.open()?;
    expect_listing(
        &mut other,
        "TREE-9",
        "recursive",
        &d,
        &["d n", "f 4 n/f", "d s", "d s/t"],
    )?;
    other.close()?;
    expect_file(&mut c, "TREE-9", &format!("{d}/n/f"), b"kept")?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_10_delete(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("x");
    let (f, g, sub) = (format!("{d}/f"), format!("{d}/g"), format!("{d}/sub"));
    let top = env.p("x-top");
    let mut c = env.enabled()?;
    mkdir(&mut c, "TREE-8", &d)?;
    mkdir(&mut c, "TREE-8", &sub)?;
    put(&mut c, &f, b"ff")?;
    put(&mut c, &g, b"ggg")?;
    put(&mut c, &top, b"top")?;
    refused(&mut c, "TREE-10", &line("delete", &sub), 518)?;
    refused(
        &mut c,
        "TREE-10",
        &line("delete", &format!("{d}/none")),
        511,
    )?;
    refused(&mut c, "TREE-10", &line("delete", &format!("{f}/x")), 511)?;
    ok(&mut c, "TREE-10", &line("delete", &f), TreeReply::Delete)?;
    expect_get_err(&mut c, "TREE-10", &f, 511)?;
    refused(&mut c, "TREE-10", &line("delete", &f), 511)?;
    // A one-name path: a file of the served folder, gone from `dir` too.
    ok(&mut c, "TREE-10", &line("delete", &top), TreeReply::Delete)?;
    let names = c.dir("TREE-10")?;
    ensure(
        !names.iter().any(|e| e.name.as_str() == top),
        "TREE-10",
        format!("{top:?} no longer in `dir` after `ok delete`"),
        || format!("{top:?} is listed"),
    )?;
    expect_listing(&mut c, "TREE-10", "recursive", &d, &["f 3 g", "d sub"])?;
    expect_file(&mut c, "TREE-10", &g, b"ggg")?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_11_rename(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("n");
    let at = |p: &str| format!("{d}/{p}");
    let mut c = env.enabled()?;
    for p in ["", "/a", "/b"] {
        mkdir(&mut c, "TREE-8", &format!("{d}{p}"))?;
    }
    put(&mut c, &at("a/one file"), b"1")?;
    put(&mut c, &at("b/two"), b"22")?;
    put(&mut c, &at("a/three"), b"333")?;
    // A file across folders, its name with a space.
    ok(
        &mut c,
        "TREE-11",
        &rename_line(&at("a/one file"), &at("b/one file")),
        TreeReply::Rename,
    )?;
    expect_file(&mut c, "TREE-11", &at("b/one file"), b"1")?;
    expect_get_err(&mut c, "TREE-11", &at("a/one file"), 511)?;
    // Never replacing.
    let refusals: [(String, String, u16); 9] = [
        (at("b/one file"), at("b/two"), 512),
        (at("a"), at("b"), 512),
        (at("a/three"), at("b"), 512),
        (at("b"), at("a/three"), 512),
        (at("a"), at("a"), 510),
        (at("a"), at("a/in"), 510),
        (at("none"), at("b/z"), 511),
        (at("a/three"), at("none/z"), 511),
        (at("a/three"), at("b/two/z"), 511),
    ];
    for (from, to, code) in &refusals {
        refused(&mut c, "TREE-11", &rename_line(from, to), *code)?;
    }
    let before = ["d a", "f 3 a/three", "d b", "f 1 b/one file", "f 2 b/two"];
    expect_listing(&mut c, "TREE-11", "recursive", &d, &before)?;
    expect_file(&mut c, "TREE-11", &at("b/two"), b"22")?;
    // A folder, with what is in it; then into another folder.
    ok(
        &mut c,
        "TREE-11",
        &rename_line(&at("a"), &at("c")),
        TreeReply::Rename,
    )?;
    expect_listing(
        &mut c,
        "TREE-11",
        "recursive",
        &d,
        &["d b", "f 1 b/one file", "f 2 b/two", "d c", "f 3 c/three"],
    )?;
    ok(
        &mut c,
        "TREE-11",
        &rename_line(&at("c"), &at("b/c")),
        TreeReply::Rename,
    )?;
    expect_file(&mut c, "TREE-11", &at("b/c/three"), b"333")?;
    expect_listing(
        &mut c,
        "TREE-11",
        "recursive",
        &d,
        &[
            "d b",
            "d b/c",
            "f 3 b/c/three",
            "f 1 b/one file",
            "f 2 b/two",
        ],
    )?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_11_len(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("k");
    let from = format!("{d}/ab cd");
    let to = format!("{d}/y");
    let n = from.len();
    let mut c = env.enabled()?;
    mkdir(&mut c, "TREE-8", &d)?;
    put(&mut c, &from, b"x")?;
    let bad = [
        format!("rename {} {from} {to}\n", n - 1),
        format!("rename {} {from} {to}\n", n + 1),
        format!("rename 0 {from} {to}\n"),
        format!("rename 0{n} {from} {to}\n"),
        format!("rename 99999 {from} {to}\n"),
        format!("rename {n} {from}\n"),
        format!("rename {from} {to}\n"),
        format!("rename +{n} {from} {to}\n"),
    ];
    let mut w = Vec::new();
    for l in &bad {
        w.extend_from_slice(l.as_bytes());
    }
    // LEN ends at the SP inside FROM: FROM is `…/ab`, TO `cd …/y`; neither exists.
    let short = format!("{d}/ab");
    let split = format!("rename {} {from} {to}\n", short.len());
    w.extend_from_slice(split.as_bytes());
    c.send("TREE-11", &w)?;
    for l in &bad {
        expect_code(&mut c, "TREE-11", 500, l.trim_end())?;
    }
    expect_code(&mut c, "TREE-11", 511, split.trim_end())?;
    expect_listing(&mut c, "TREE-11", "-", &d, &["f 1 ab cd"])?;
    let spaced = format!("{d}/y z");
    ok(
        &mut c,
        "TREE-11",
        &rename_line(&from, &spaced),
        TreeReply::Rename,
    )?;
    expect_listing(&mut c, "TREE-11", "-", &d, &["f 1 y z"])?;
    c.close()?;
    remove_tree(&env, &d);
    Ok(Done::Pass)
}

fn tree_12_visible(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let d = env.p("v");
    let (f, g) = (format!("{d}/f"), format!("{d}/g"));
    let mut a = env.enabled()?;
    let mut b = env.open()?;
    mkdir(&mut a, "TREE-12", &d)?;
    expect_listing(&mut b, "TREE-12", "-", &d, &[])?;
    put(&mut a, &f, b"ab")?;
    expect_listing(&mut b, "TREE-12", "-", &d, &["f 2 f"])?;
    ok(&mut a, "TREE-12", &rename_line(&f, &g), TreeReply::Rename)?;
    expect_listing(&mut b, "TREE-12", "-", &d, &["f 2 g"])?;
    ok(&mut a, "TREE-12", &line("delete", &g), TreeReply::Delete)?;
    expect_listing(&mut b, "TREE-12", "-", &d, &[])?;
    ok(&mut a, "TREE-12", &line("rmdir", &d), TreeReply::Rmdir)?;
    match list(&mut b, "TREE-12", "-", &d)? {
        Err(e) if e.code == Code::NOT_FOUND => {}
        other => {
            return Err(violation(
                "TREE-12",
                format!("err 511 for `list - {d}` after `ok rmdir`"),
                match other {
                    Ok(v) => format!("ok list {}", v.len()),
                    Err(e) => show_reply(&Reply::Err(e)),
                },
            ));
        }
    }
    b.close()?;
    // Pipelined, in one write: each request sees the effect of the one before (PIPE-1).
    let d2 = env.p("v2");
    let (f2, g2) = (format!("{d2}/f"), format!("{d2}/g"));
    let mut w = line("mkdir", &d2);
    w.extend(put_line(3, PutMode::New, PutFlow::Now, f2.as_bytes()));
    w.extend(payload_of(b"abc"));
    w.extend(list_line("-", &d2));
    w.extend(rename_line(&f2, &g2));
    w.extend(list_line("-", &d2));
    w.extend(line("delete", &g2));
    w.extend(line("rmdir", &d2));
    w.extend(list_line("-", &d2));
    a.send("PIPE-1", &w)?;
    expect_ok(&mut a, "PIPE-1", &TreeReply::Mkdir, &format!("mkdir {d2}"))?;
    let want = Reply::PutOk {
        size: 3,
        digest: Digest::of(b"abc"),
    };
    let got = a.reply("PIPE-1", &show_reply(&want))?;
    ensure(got == want, "PIPE-1", show_reply(&want), || {
        show_reply(&got)
    })?;
    let l = read_list(&mut a, "PIPE-1", false, &format!("list - {d2}"))?;
    expect_entries(
        "PIPE-1",
        "after the put",
        &l.unwrap_or_default(),
        &["f 3 f".to_owned()],
    )?;
    expect_ok(&mut a, "PIPE-1", &TreeReply::Rename, "rename")?;
    let l = read_list(&mut a, "PIPE-1", false, &format!("list - {d2}"))?;
    expect_entries(
        "PIPE-1",
        "after the rename",
        &l.unwrap_or_default(),
        &["f 3 g".to_owned()],
    )?;
    expect_ok(
        &mut a,
        "PIPE-1",
        &TreeReply::Delete,
        &format!("delete {g2}"),
    )?;
    expect_ok(&mut a, "PIPE-1", &TreeReply::Rmdir, &format!("rmdir {d2}"))?;
    match read_list(&mut a, "PIPE-1", false, &format!("list - {d2}"))? {
        Err(e) if e.code == Code::NOT_FOUND => {}
        other => {
            return Err(violation(
                "PIPE-1",
                format!("err 511 for `list - {d2}` after its rmdir"),
                match other {
                    Ok(v) => format!("ok list {}", v.len()),
                    Err(e) => show_reply(&Reply::Err(e)),
                },
            ));
        }
    }
    a.close()?;
    Ok(Done::Pass)
}

fn tree_13_read_only(ctx: &mut Ctx<'_>) -> Res<Done> {
    let ep = ctx.read_only()?;
    let (mut c, g) = Conn::open(&ep, ctx.deadline())?;
    if !wire_tree::offered(&g) {
        return Err(unimplemented(
            "needs a read-only server whose greeting lists `tree` (--read-only-server ADDR)",
        ));
    }
    c.send("TREE-1", b"enable tree\n")?;
    expect_ok(&mut c, "TREE-1", &enabled_reply(), "enable tree")?;
    let before = list_ok(&mut c, "TREE-13", "recursive", ".")?;
    // Requests on entries that exist when there are any, else on the case's names.
    let file = before
        .iter()
        .find(|e| matches!(e.kind, EntryKind::File { .. }))
        .map(|e| e.path.as_str().to_owned());
    let folder = before
        .iter()
        .find(|e| e.kind == EntryKind::Folder)
        .map(|e| e.path.as_str().to_owned());
    let x = String::from_utf8_lossy(&ctx.name("ro")).into_owned();
    let file = file.unwrap_or_else(|| x.clone());
    let folder = folder.unwrap_or_else(|| x.clone());
    let requests = [
        (line("mkdir", &x), 514),
        (line("mkdir", &format!("{x}//y")), 510),
        (line("rmdir", &folder), 514),
        (line("rmdir", &format!("/{folder}")), 510),
        (line("delete", &file), 514),
        (line("delete", &format!("{file}/.h")), 510),
        (rename_line(&file, &format!("{x}-to")), 514),
        (rename_line(&folder, &format!("{folder}/in")), 510),
    ];
    let mut w = Vec::new();
    for (l, _) in &requests {
        w.extend_from_slice(l);
    }
    c.send("TREE-13", &w)?;
    for (l, code) in &requests {
        expect_code(&mut c, "TREE-13", *code, &shown_line(l))?;
    }
    let after = list_ok(&mut c, "TREE-13", "recursive", ".")?;
    let (b, a): (Vec<String>, Vec<String>) = (
        before.iter().map(shape).collect(),
        after.iter().map(shape).collect(),
    );
    ensure(
        b == a,
        "TREE-13",
        format!("the read-only server's entries unchanged: {b:?}"),
        || format!("{a:?}"),
    )?;
    c.close()?;
    Ok(Done::Pass)
}
