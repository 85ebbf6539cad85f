//! The client cases: scripted servers, correct and hostile, and how each run is judged.

use std::path::Path;
use std::time::Duration;

use ferry_wire::{Code, Digest};

use super::{After, Answer, ClientCase, GREETING, Mock, Op, Outcome, PutAnswer, file_digest, tree};
use crate::case::{Done, Res, ensure, violation};
use crate::net::{Trailer, show};

pub(super) const MTIME: &str = "2024-03-01T08:00:00Z";

/// The content of a downloaded file: 3000 octets including LF, CR, NUL and non-UTF-8.
pub(super) fn content() -> Vec<u8> {
    (0..3000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

/// `ok get` and the payload of `data` in chunks of `chunk` octets, LF line ends.
fn get_reply(data: &[u8], chunk: usize) -> Vec<u8> {
    get_reply_with(data, chunk, Digest::of(data), "\n")
}

pub(super) fn get_reply_with(data: &[u8], chunk: usize, digest: Digest, eol: &str) -> Vec<u8> {
    let mut out = format!("ok get {} {MTIME}{eol}", data.len()).into_bytes();
    for c in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("data {}{eol}", c.len()).as_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(format!("end {digest}{eol}").as_bytes());
    out
}

pub(super) fn get_mock(bytes: Vec<u8>, then: After) -> Mock {
    Mock {
        get: Answer { bytes, then },
        ..Mock::default()
    }
}

fn greeting_eager(max_eager: u64) -> Vec<u8> {
    GREETING
        .replace("max-eager=1048576", &format!("max-eager={max_eager}"))
        .into_bytes()
}

pub(super) fn listing(names: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("ok dir {}\n", names.len()).into_bytes();
    for n in names {
        out.extend_from_slice(format!("5 {MTIME} ").as_bytes());
        out.extend_from_slice(n);
        out.push(b'\n');
    }
    out
}

// ------------------------------------------------------------------- judges ---

pub(super) fn succeeded(o: &Outcome, req: &str) -> Res<()> {
    ensure(
        o.code == Some(0),
        req,
        "exit status 0 (the operation succeeded)",
        || o.status(),
    )
}

pub(super) fn failed(o: &Outcome, req: &str) -> Res<()> {
    ensure(
        o.code != Some(0),
        req,
        "a non-zero exit status (the operation must fail)",
        || "exit status 0 (reported as success)",
    )
}

/// Nothing but `{dir}` and what the case put there exists in the work folder.
pub(super) fn nothing_outside(o: &Outcome, req: &str) -> Res<()> {
    let t = tree(&o.work);
    let outside: Vec<&String> = t
        .iter()
        .filter(|p| !(p.as_str() == "d/" || p.starts_with("d/") || p.starts_with("keep")))
        .collect();
    ensure(
        outside.is_empty(),
        req,
        "no file created outside {dir}",
        || format!("created {outside:?}"),
    )
}

pub(super) fn ok_get(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let got = std::fs::read(o.target_file()).map_err(|e| {
        violation(
            req,
            format!("{{dir}}/{} with the file's content", o.name),
            format!("cannot read it: {e}"),
        )
    })?;
    ensure(
        got == content(),
        req,
        "the 3000 octets the server sent",
        || format!("{} octets that differ", got.len()),
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

fn ok_get_empty(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let len = std::fs::metadata(o.target_file())
        .map(|m| m.len())
        .map_err(|e| {
            violation(
                req,
                format!("an empty {{dir}}/{}", o.name),
                format!("no file: {e}"),
            )
        })?;
    ensure(len == 0, req, "an empty file", || format!("{len} octets"))?;
    Ok(Done::Pass)
}

/// The get must fail and leave no `{dir}/{name}`.
fn failed_no_file(o: &Outcome, req: &str) -> Res<Done> {
    failed(o, req)?;
    let f = o.target_file();
    ensure(
        !f.exists(),
        req,
        format!("no file {{dir}}/{} (nothing presented as complete)", o.name),
        || {
            format!(
                "it exists with {} octets",
                std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0)
            )
        },
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

fn failed_only(o: &Outcome, req: &str) -> Res<Done> {
    failed(o, req)?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// The client sent `dir` and printed `names` (the listing's valid entries) on stdout.
fn listed(o: &Outcome, req: &str, names: &[&str]) -> Res<()> {
    ensure(
        o.log.requests.iter().any(|r| r.as_slice() == b"dir\n"),
        req,
        "a `dir` request",
        || {
            format!(
                "requests {:?}",
                o.log.requests.iter().map(|r| show(r)).collect::<Vec<_>>()
            )
        },
    )?;
    let out = String::from_utf8_lossy(&o.stdout);
    let missing: Vec<&&str> = names.iter().filter(|n| !out.contains(**n)).collect();
    ensure(
        missing.is_empty(),
        req,
        format!("the listing's valid entries {names:?} shown"),
        || format!("{missing:?} missing from the output"),
    )
}

/// A listing with an entry whose name is hostile (NAME-9) among valid ones ending with
/// `z.txt`: nothing may be created anywhere; the entry is skipped and the rest of the
/// listing presented (NAME-14).
fn hostile_listing(o: &Outcome, req: &str) -> Res<Done> {
    let t = tree(&o.work);
    ensure(t == ["d/"], req, "no file created anywhere", || {
        format!("files now: {t:?}")
    })?;
    succeeded(o, "NAME-14")?;
    listed(o, "NAME-14", &["z.txt"])?;
    Ok(Done::Pass)
}

/// The long listing of DIR-8/1: accepted, every entry read (the first and last shown).
fn ok_long_listing(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    listed(o, req, &["f00000", "f09999"])?;
    Ok(Done::Pass)
}

/// The name of entry `i` of the wide listing: five digits, then `n` up to 255 octets.
fn wide_name(i: usize) -> String {
    format!("{i:05}{}", "n".repeat(250))
}

/// A listing of 11,000 entries with 255-octet names, about 3 MiB, sent in one write: the
/// transport cuts it into segments anywhere, so the client's reads end inside lines while
/// more than its buffer's worth goes by (if its buffer is 1 MiB, it must make room for the
/// partial line at its end).
fn wide_listing() -> Vec<u8> {
    let mut out = format!("ok dir {WIDE}\n").into_bytes();
    for i in 0..WIDE {
        out.extend_from_slice(format!("{i} {MTIME} {}\n", wide_name(i)).as_bytes());
    }
    out
}

const WIDE: usize = 11_000;

/// The wide listing: accepted, every entry read (the first and last shown).
fn ok_wide_listing(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    listed(o, req, &[&wide_name(0), &wide_name(WIDE - 1)])?;
    Ok(Done::Pass)
}

/// No file under `{dir}` holds `octets` (received, then to be discarded).
fn nothing_holds(o: &Outcome, req: &str, octets: &[u8], what: &str) -> Res<()> {
    for rel in tree(&o.dir) {
        let Ok(data) = std::fs::read(o.dir.join(&rel)) else {
            continue;
        };
        ensure(
            !data.windows(octets.len()).any(|w| w == octets),
            req,
            format!("the octets received discarded ({what})"),
            || format!("{{dir}}/{rel} holds them ({} octets)", data.len()),
        )?;
    }
    Ok(())
}

/// A get whose digest did not match: failure, no file, and the octets received are not
/// kept anywhere in `{dir}`, not even as a partial download (SUM-4).
fn failed_discarded(o: &Outcome, req: &str) -> Res<Done> {
    failed_no_file(o, req)?;
    nothing_holds(o, "SUM-4", &content()[..100], "after a digest mismatch")?;
    Ok(Done::Pass)
}

/// A get refused with an unknown 5xx code: failure, no file, and the request not repeated
/// unchanged (the code is permanent, ERR-3).
fn failed_not_repeated(o: &Outcome, req: &str) -> Res<Done> {
    failed_no_file(o, req)?;
    let gets: Vec<&Vec<u8>> = o
        .log
        .requests
        .iter()
        .filter(|r| r.starts_with(b"get "))
        .collect();
    ensure(
        gets.len() == 1,
        req,
        "one `get`: a permanent error is not retried unchanged",
        || {
            format!(
                "{} gets: {:?}",
                gets.len(),
                gets.iter().map(|r| show(r)).collect::<Vec<_>>()
            )
        },
    )?;
    Ok(Done::Pass)
}

pub(super) fn ok_only(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    Ok(Done::Pass)
}

fn ok_dir_visible(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, "DIR-8")?;
    let out = String::from_utf8_lossy(&o.stdout);
    let raw: Vec<String> = ['\u{202e}', '\u{200b}']
        .iter()
        .filter(|c| out.contains(**c))
        .map(|c| format!("U+{:04X}", *c as u32))
        .collect();
    ensure(
        raw.is_empty(),
        req,
        "invisible characters shown visibly (escaped)",
        || format!("the output contains {} as is", raw.join(" and ")),
    )?;
    Ok(Done::Pass)
}

/// A get with a stale partial download in `{dir}` (`{name}.ferry-part`, octets that are not
/// the file's): a client that resumes from it must find the mismatch (GET-7, SUM-4) and
/// should get the file again (SUM-5); the result is the file the server sent.
fn ok_get_stale_partial(o: &Outcome, req: &str) -> Res<Done> {
    ensure(
        o.code == Some(0),
        "SUM-5",
        "the file downloaded (a stale partial file discarded, or verified and got again from offset 0)",
        || o.status(),
    )?;
    let got = std::fs::read(o.target_file()).map_err(crate::net::local)?;
    ensure(
        got == content(),
        req,
        "the 3000 octets the server sent, not the stale partial octets",
        || format!("{} octets that differ", got.len()),
    )?;
    nothing_outside(o, "NAME-10")?;
    Ok(Done::Pass)
}

/// The upload that the scripted server received, or a violation of `req`.
fn the_upload<'a>(o: &'a Outcome, req: &str) -> Res<&'a super::Upload> {
    o.log
        .uploads
        .first()
        .ok_or_else(|| violation(req, "an upload", format!("none; {}", o.status())))
}

/// The local file shrank after the put line (before `go`): the payload ends with `abort 430`
/// after whole chunks of the file's octets, never fewer octets than SIZE then `end`
/// (PUT-20), and the put fails.
fn aborted_changed(o: &Outcome, req: &str) -> Res<Done> {
    let up = the_upload(o, req)?;
    let abort = match &up.trailer {
        Some(Trailer::Abort(e)) => e,
        other => {
            return Err(violation(
                req,
                "the payload ended with `abort 430`",
                other
                    .as_ref()
                    .map_or_else(|| "no trailer".to_owned(), Trailer::show),
            ));
        }
    };
    ensure(
        abort.code == Code::CHANGED,
        req,
        "abort code 430 (local file changed)",
        || abort.code.to_string(),
    )?;
    let local = std::fs::read(o.target_file()).map_err(crate::net::local)?;
    ensure(
        local.starts_with(&up.data),
        "DATA-3",
        "chunk data that is the local file's octets",
        || format!("{} octets that differ", up.data.len()),
    )?;
    failed(o, "PUT-21")?;
    abort_text(abort)?;
    Ok(Done::Pass)
}

/// ERR-7: the text of an abort begins with its code's name.
fn abort_text(abort: &ferry_wire::ErrorReply) -> Res<()> {
    let name = abort.code.name().unwrap_or("");
    let text = abort.text.as_ref().map_or("", |t| t.as_str());
    ensure(
        text.starts_with(name),
        "ERR-7",
        format!("a text beginning with {name:?}"),
        || format!("{text:?}"),
    )
}

/// The local file grew after the put line (before `go`): the client sends exactly SIZE
/// octets and their digest (the mock checks both, PUT-1, SUM-1) and succeeds, or ends the
/// payload with `abort 430` and fails (PUT-20).
fn grown_sent_or_aborted(o: &Outcome, req: &str) -> Res<Done> {
    let up = the_upload(o, req)?;
    match &up.trailer {
        Some(Trailer::End(_)) => {
            ensure(
                up.data.len() as u64 == up.size,
                "PUT-1",
                format!("{} octets", up.size),
                || up.data.len().to_string(),
            )?;
            succeeded(o, req)?;
        }
        Some(Trailer::Abort(e)) => {
            ensure(
                e.code == Code::CHANGED,
                req,
                "abort code 430 (local file changed)",
                || e.code.to_string(),
            )?;
            failed(o, "PUT-21")?;
            abort_text(e)?;
        }
        None => return Err(violation(req, "a payload with a trailer", o.status())),
    }
    Ok(Done::Pass)
}

/// A put of a local file whose name is not a valid ferry name: the client sends no put
/// (an invalid name would be flagged by the scripted server) and fails.
fn failed_no_put(o: &Outcome, req: &str) -> Res<Done> {
    let puts: Vec<String> = o
        .log
        .requests
        .iter()
        .filter(|r| r.starts_with(b"put "))
        .map(|r| show(r).into())
        .collect();
    ensure(
        puts.is_empty(),
        req,
        "no put: the local name is not a valid name and is not silently altered",
        || format!("{puts:?}"),
    )?;
    failed(o, req)?;
    Ok(Done::Pass)
}

fn ok_put(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let local = std::fs::read(o.target_file()).map_err(crate::net::local)?;
    let up = o
        .log
        .uploads
        .iter()
        .find(|u| u.data == local)
        .ok_or_else(|| {
            violation(
                req,
                format!("an upload of the {} octets of the local file", local.len()),
                format!("{} uploads, none with that content", o.log.uploads.len()),
            )
        })?;
    ensure(
        up.name == o.name.as_bytes(),
        req,
        format!("the name {:?}", o.name),
        || show(&up.name),
    )?;
    ensure(
        up.size == local.len() as u64,
        "PUT-1",
        format!("SIZE {}", local.len()),
        || up.size.to_string(),
    )?;
    ensure(
        up.trailer == Some(Trailer::End(Digest::of(&local))),
        "SUM-1",
        format!("end {}", Digest::of(&local)),
        || {
            up.trailer
                .as_ref()
                .map_or_else(|| "no trailer".to_owned(), Trailer::show)
        },
    )?;
    Ok(Done::Pass)
}

fn ok_put_nfc(o: &Outcome, req: &str) -> Res<Done> {
    let nfc = "caf\u{e9}.txt";
    match o.log.uploads.first() {
        Some(u) => ensure(
            u.name == nfc.as_bytes(),
            req,
            format!("the NFC name {nfc:?}"),
            || show(&u.name),
        )?,
        None => {
            return Err(violation(
                req,
                format!("an upload named {nfc:?}"),
                o.status(),
            ));
        }
    }
    succeeded(o, req)?;
    Ok(Done::Pass)
}

fn symlink_kept(o: &Outcome, req: &str) -> Res<Done> {
    let target = o.work.join("keep-target");
    let d = file_digest(&target);
    ensure(
        d == Some(Digest::of(b"precious")),
        req,
        "the symbolic link's target unchanged",
        || "the target was overwritten",
    )?;
    if o.code == Some(0) {
        let meta = std::fs::symlink_metadata(o.target_file()).map_err(crate::net::local)?;
        ensure(
            meta.is_file(),
            req,
            "{dir}/{name} replaced by a regular file",
            || "still a link",
        )?;
        let got = std::fs::read(o.target_file()).map_err(crate::net::local)?;
        ensure(got == content(), "GET-5", "the content sent", || {
            format!("{} octets", got.len())
        })?;
    }
    Ok(Done::Pass)
}

// -------------------------------------------------------------------- setups ---

pub(super) fn write_put_file(dir: &Path, name: &str, len: usize) -> std::io::Result<()> {
    let data: Vec<u8> = (0..len).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    std::fs::write(dir.join(name), data)
}

fn setup_put_big(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 2 * 1_048_576 + 1)
}

fn setup_put_small(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 100)
}

fn setup_put_empty(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 0)
}

fn setup_put_1m(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    write_put_file(dir, name, 1_048_576 + 1000)
}

/// The partial-download name the reference clients use (`ferry_client_core::PART_SUFFIX`);
/// to any other client it is just a file next to the destination.
fn partial_name(name: &str) -> String {
    format!("{name}.ferry-part")
}

fn setup_stale_partial(dir: &Path, _: &Path, name: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(partial_name(name)), vec![0xAA; 1000])
}

fn setup_symlink_partial(dir: &Path, work: &Path, name: &str) -> std::io::Result<()> {
    std::fs::write(work.join("keep-target"), b"precious")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink("../keep-target", dir.join(partial_name(name)))?;
    Ok(())
}

fn shrink_local(p: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)?
        .set_len(1_048_576 + 500)
}

fn shrink_local_small(p: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(p)?.set_len(50)
}

fn grow_local(p: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(p)?
        .write_all(b"0123456789")
}

/// A correct get reply for a client asking from `offset`: the tail of [`content`] with the
/// whole file's digest, or 515 past its end.
pub(super) fn get_at_offset(_name: &str, offset: u64) -> Answer {
    let c = content();
    let bytes = match usize::try_from(offset) {
        Ok(k) if k <= c.len() => {
            let mut out = format!("ok get {} {MTIME}\n", c.len()).into_bytes();
            for piece in c[k..].chunks(1000) {
                out.extend_from_slice(format!("data {}\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
            }
            out.extend_from_slice(format!("end {}\n", Digest::of(&c)).as_bytes());
            out
        }
        _ => b"err 515 bad-offset\n".to_vec(),
    };
    Answer {
        bytes,
        then: After::Continue,
    }
}

/// `ok get` and a payload of 1,100,000 octets in chunks of 30, to be sent 38 octets per
/// write: every write then ends two octets into a chunk head (`da|ta 30`), so the client
/// never holds a complete message at the end of a read and its buffer must make room.
fn mid_head_reply() -> (Vec<u8>, usize) {
    let data = big_content();
    let out = get_reply(&data, 30);
    let head = format!("ok get {} {MTIME}\n", data.len()).len();
    let unit = "data 30\n".len() + 30;
    debug_assert_eq!(unit - head % unit, 2);
    (out, unit)
}

fn big_content() -> Vec<u8> {
    (0..1_100_000u32)
        .map(|i| ((i * 13 + 5) % 251) as u8)
        .collect()
}

fn ok_get_big(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let got = std::fs::read(o.target_file()).map_err(crate::net::local)?;
    ensure(
        got == big_content(),
        req,
        "the 1,100,000 octets the server sent",
        || format!("{} octets that differ", got.len()),
    )?;
    Ok(Done::Pass)
}

fn setup_symlink(dir: &Path, work: &Path, name: &str) -> std::io::Result<()> {
    std::fs::write(work.join("keep-target"), b"precious")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink("../keep-target", dir.join(name))?;
    Ok(())
}

// --------------------------------------------------------------------- cases ---

pub(crate) fn all() -> Vec<ClientCase> {
    let c = content();
    let bad_digest = Digest::of(b"not the content");
    let mut trunc = get_reply(&c, 1000);
    trunc.truncate(format!("ok get 3000 {MTIME}\n").len() + 1500);
    let mut abort_mid = format!("ok get 3000 {MTIME}\ndata 1000\n").into_bytes();
    abort_mid.extend_from_slice(&c[..1000]);
    abort_mid.extend_from_slice(b"abort 431 storage\n");
    let mut overrun = format!("ok get 10 {MTIME}\ndata 12\n").into_bytes();
    overrun.extend_from_slice(b"0123456789ab");
    overrun.extend_from_slice(format!("end {}\n", Digest::of(b"0123456789")).as_bytes());
    let mut early_end = format!("ok get 10 {MTIME}\ndata 5\n01234").into_bytes();
    early_end.extend_from_slice(format!("end {}\n", Digest::of(b"01234")).as_bytes());
    let data0 = format!(
        "ok get 5 {MTIME}\ndata 0\ndata 5\nhelloend {}\n",
        Digest::of(b"hello")
    )
    .into_bytes();
    let zeros = format!(
        "ok get 05 {MTIME}\ndata 5\nhelloend {}\n",
        Digest::of(b"hello")
    )
    .into_bytes();
    let upper = format!(
        "OK get 5 {MTIME}\ndata 5\nhelloend {}\n",
        Digest::of(b"hello")
    )
    .into_bytes();
    let mid_head = mid_head_reply();
    let year_0 = {
        let mut r = b"ok get 3000 0000-01-01T00:00:00Z\n".to_vec();
        r.extend_from_slice(&get_reply(&c, 1000)[format!("ok get 3000 {MTIME}\n").len()..]);
        r
    };
    let long_listing = {
        let mut out = b"ok dir 10000\n".to_vec();
        for i in 0..10_000 {
            out.extend_from_slice(format!("{i} {MTIME} f{i:05}\n").as_bytes());
        }
        out
    };

    vec![
        // ---- downloads that must succeed
        ClientCase::new("GET-5/1", "get: a multi-chunk binary file is stored", &["GET-5", "DATA-3", "DATA-10", "SUM-2", "FRAME-3", "FRAME-6", "CLOSE-2"], Op::Get, get_mock(get_reply(&c, 1000), After::Continue), ok_get),
        ClientCase::new("GET-5/2", "get: an empty file (trailer only) is stored", &["GET-5", "DATA-10"], Op::Get, get_mock(get_reply(b"", 1), After::Continue), ok_get_empty),
        ClientCase::new("GET-5/3", "get: a UTF-8 name with spaces", &["GET-5", "NAME-6"], Op::Get, get_mock(get_reply(&c, 4096), After::Continue), ok_get).name("射频 仿真 (final).pptx"),
        ClientCase::new("FRAME-1/1", "get: the reply arrives one octet per write", &["FRAME-1"], Op::Get, Mock { drip: Some((1, Duration::ZERO)), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("FRAME-1/2", "get: a slow drip within the stall limit still succeeds", &["FRAME-1", "DATA-10"], Op::Get, Mock { drip: Some((64, Duration::from_millis(25))), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("FRAME-3/1", "get: CR LF line ends from the server are accepted", &["FRAME-3"], Op::Get, get_mock(get_reply_with(&c, 1000, Digest::of(&c), "\r\n"), After::Continue), ok_get),
        ClientCase::new("HELLO-6/1", "unknown greeting parameters, extensions and versions are ignored", &["HELLO-6", "EXT-5", "EXT-3", "VER-3"], Op::Get, Mock {
            greeting: b"ferry/7,1 x-colour=blue max-line=4096 max-name=255 max-size=1099511627776 max-chunk=1048576 ext=x-zip,starttls max-eager=1048576 idle=300 stall=60 future-param=\n".to_vec(),
            ..get_mock(get_reply(&c, 1000), After::Continue)
        }, ok_get),
        ClientCase::new("CONN-5/1", "nothing is sent before the greeting", &["CONN-5"], Op::Get, Mock { greeting_delay: Duration::from_millis(400), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("NAME-10/1", "get does not write through a symbolic link at the destination", &["NAME-10"], Op::Get, get_mock(get_reply(&c, 1000), After::Continue), symlink_kept).setup(setup_symlink),
        // ---- downloads that must fail and leave nothing
        ClientCase::new("SUM-2/1", "get: wrong digest: failure, no file, the octets not kept", &["SUM-2", "SUM-4", "DATA-10", "GET-11"], Op::Get, get_mock(get_reply_with(&c, 1000, bad_digest, "\n"), After::Continue), failed_discarded),
        ClientCase::new("DATA-10/1", "get: truncated payload then EOF: failure, no file", &["DATA-10", "GET-11", "CLOSE-7"], Op::Get, get_mock(trunc, After::Close), failed_no_file),
        ClientCase::new("DATA-9/1", "get: abort 431 in the middle: failure, no file", &["DATA-9", "GET-11"], Op::Get, get_mock(abort_mid, After::Continue), failed_no_file),
        ClientCase::new("DATA-9/2", "get: abort 430 before any chunk: failure, no file", &["DATA-9", "GET-11"], Op::Get, get_mock(format!("ok get 3000 {MTIME}\nabort 430 changed\n").into_bytes(), After::Continue), failed_no_file),
        ClientCase::new("DATA-7/1", "get: a chunk past SIZE (framing violation): failure, no file", &["DATA-7", "DATA-5"], Op::Get, get_mock(overrun, After::Hold), failed_no_file),
        ClientCase::new("DATA-5/1", "get: `data 0`: failure, no file", &["DATA-5", "DATA-7"], Op::Get, get_mock(data0, After::Hold), failed_no_file),
        ClientCase::new("DATA-5/2", "get: `end` before SIZE octets: failure, no file", &["DATA-5", "DATA-10"], Op::Get, get_mock(early_end, After::Hold), failed_no_file),
        ClientCase::new("FRAME-2/1", "a reply line longer than 4096 octets: failure", &["FRAME-2", "ERR-10"], Op::Get, get_mock(vec![b'x'; 5000], After::Hold), failed_no_file),
        ClientCase::new("FRAME-5/1", "a SIZE with a leading zero: failure, no file", &["FRAME-5", "FRAME-7", "ERR-10"], Op::Get, get_mock(zeros, After::Hold), failed_no_file),
        ClientCase::new("FRAME-7/1", "an upper-case keyword: failure, no file", &["FRAME-7", "ERR-10"], Op::Get, get_mock(upper, After::Hold), failed_no_file),
        ClientCase::new("ERR-10/1", "get answered with `go`: failure, no file", &["ERR-10"], Op::Get, get_mock(b"go\n".to_vec(), After::Hold), failed_no_file),
        ClientCase::new("ERR-3/1", "an unknown 5xx error code: failure, no file, not retried unchanged", &["ERR-3"], Op::Get, get_mock(b"err 599 something new\n".to_vec(), After::Continue), failed_not_repeated),
        ClientCase::new("ERR-4/1", "an error whose text looks like success: failure, no file", &["ERR-4"], Op::Get, get_mock(format!("err 511 ok get 5 {MTIME}\n").into_bytes(), After::Continue), failed_no_file),
        ClientCase::new("ERR-9/1", "err 421 instead of the reply, then close: failure", &["ERR-9", "CLOSE-7"], Op::Get, get_mock(b"err 421 timeout\n".to_vec(), After::Close), failed_no_file),
        ClientCase::new("CLOSE-7/1", "the server closes without replying: failure, no file", &["CLOSE-7", "PIPE-6"], Op::Get, get_mock(Vec::new(), After::Close), failed_no_file),
        // ---- first line
        ClientCase::new("HELLO-11/1", "`err 420 busy` instead of a greeting: failure, nothing sent", &["HELLO-11", "CONN-5"], Op::Get, Mock { greeting: b"err 420 busy\n".to_vec(), after_greeting: After::Close, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-10/1", "a greeting without version 1: failure, nothing sent", &["HELLO-10"], Op::Get, Mock { greeting: GREETING.replace("ferry/1 ", "ferry/2,3 ").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/1", "a greeting without max-line: failure, nothing sent", &["HELLO-9", "HELLO-2"], Op::Get, Mock { greeting: GREETING.replace(" max-line=4096", "").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/2", "a greeting with max-chunk=2097152: failure, nothing sent", &["HELLO-9", "HELLO-5"], Op::Get, Mock { greeting: GREETING.replace("max-chunk=1048576", "max-chunk=2097152").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/3", "a greeting with idle=0: failure, nothing sent", &["HELLO-9", "HELLO-7"], Op::Get, Mock { greeting: GREETING.replace("idle=300", "idle=0").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/4", "a greeting with a parameter twice: failure, nothing sent", &["HELLO-9", "HELLO-3"], Op::Get, Mock { greeting: GREETING.replace("stall=60", "stall=60 idle=300").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/5", "a first line that is not ferry: failure, nothing sent", &["HELLO-9"], Op::Get, Mock { greeting: b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        // ---- listings
        ClientCase::new("DIR-8/1", "dir: a long valid listing is accepted, every entry read", &["DIR-8"], Op::Dir, Mock { dir: Answer { bytes: long_listing, then: After::Continue }, ..Mock::default() }, ok_long_listing),
        ClientCase::new("DIR-8/2", "dir: COUNT 2^64-1 then EOF: no huge allocation, failure", &["DIR-8", "CLOSE-7"], Op::Dir, Mock { dir: Answer { bytes: format!("ok dir 18446744073709551615\n1 {MTIME} a\n").into_bytes(), then: After::Close }, ..Mock::default() }, failed_only),
        ClientCase::new("FRAME-1/4", "dir: 11,000 entries with 255-octet names (3 MiB) in one write", &["FRAME-1", "DIR-8"], Op::Dir, Mock { dir: Answer { bytes: wide_listing(), then: After::Continue }, ..Mock::default() }, ok_wide_listing),
        ClientCase::new("NAME-9/1", "dir: a listed name `../x` creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-10", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b"../x", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-9/2", "dir: a listed name `a/b` creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-10", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b"a/b", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-9/3", "dir: a listed name `.hidden` creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b".hidden", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-9/4", "dir: a listed name not in NFC creates nothing; the entry is skipped, the rest listed", &["NAME-9", "NAME-5", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&["cafe\u{301}.txt".as_bytes(), b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("FRAME-4/1", "dir: a listed name that is not UTF-8 creates nothing; the entry is skipped, the rest listed", &["FRAME-4", "NAME-9", "NAME-14"], Op::Dir, Mock { dir: Answer { bytes: listing(&[b"caf\xe9.txt", b"z.txt"]), then: After::Continue }, ..Mock::default() }, hostile_listing),
        ClientCase::new("NAME-12/1", "dir: invisible characters in names are shown visibly", &["NAME-12"], Op::Dir, Mock { dir: Answer { bytes: listing(&["a\u{200b}b".as_bytes(), "evil\u{202e}fdp.exe".as_bytes()]), then: After::Continue }, ..Mock::default() }, ok_dir_visible),
        // ---- uploads
        ClientCase::new("PUT-1/1", "put: 2 MiB + 1 octets: exact SIZE, chunks and digest", &["PUT-1", "DATA-1", "DATA-2", "DATA-4", "SUM-1", "PUT-6"], Op::Put, Mock::default(), ok_put).setup(setup_put_big),
        ClientCase::new("PUT-1/2", "put: an empty file", &["PUT-1", "DATA-1", "SUM-1"], Op::Put, Mock::default(), ok_put).setup(setup_put_empty),
        ClientCase::new("PUT-7/1", "put with max-eager=0 uses flow wait", &["PUT-7"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, ..Mock::default() }, ok_put).setup(setup_put_small),
        ClientCase::new("PUT-7/2", "put of more than max-eager uses flow wait", &["PUT-7"], Op::Put, Mock { greeting: greeting_eager(4), max_eager: 4, ..Mock::default() }, ok_put).setup(setup_put_small),
        ClientCase::new("PUT-5/1", "put wait: nothing sent before go", &["PUT-5"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::Accept { go_delay: Duration::from_millis(400) }, ..Mock::default() }, ok_put).setup(setup_put_small),
        ClientCase::new("PUT-5/2", "put wait refused with 512: no payload, failure", &["PUT-5", "PUT-21"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::Refuse(b"err 512 exists\n".to_vec()), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PUT-21/1", "put refused with 512: not reported as success", &["PUT-21"], Op::Put, Mock { put: PutAnswer::Refuse(b"err 512 exists\n".to_vec()), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PUT-21/2", "`ok put` with another DIGEST: not success", &["PUT-21"], Op::Put, Mock { put: PutAnswer::ReplyWith(format!("ok put 100 {bad_digest}\n").into_bytes(), After::Continue), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PUT-21/3", "`ok put` with another SIZE: not success", &["PUT-21"], Op::Put, Mock { put: PutAnswer::ReplyWith(b"ok put 99 xxh3-128:99aa06d3014798d86001c324468d497f\n".to_vec(), After::Continue), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("PIPE-6/1", "connection closed after the trailer, before the reply: not success", &["PIPE-6", "CLOSE-7"], Op::Put, Mock { put: PutAnswer::ReplyWith(Vec::new(), After::Close), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("ERR-9/2", "err 422 as the reply to a put: not success", &["ERR-9"], Op::Put, Mock { put: PutAnswer::ReplyWith(b"err 422 shutting-down\n".to_vec(), After::Close), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("NAME-8/1", "put of a local name in NFD sends the NFC name", &["NAME-8"], Op::Put, Mock::default(), ok_put_nfc).name("cafe\u{301}.txt").setup(setup_put_small),
        ClientCase::new("NAME-4/1", "put of a local file named ` lead.txt` (leading space): no put, failure", &["NAME-4"], Op::Put, Mock::default(), failed_no_put).name(" lead.txt").setup(setup_put_small),
        ClientCase::new("NAME-3/1", "put of a local file named `a\\b.txt` (backslash): no put, failure", &["NAME-3"], Op::Put, Mock::default(), failed_no_put).name("a\\b.txt").setup(setup_put_small),
        ClientCase::new("CLOSE-3/1", "the client closes its side once it has read bye", &["CLOSE-3"], Op::Dir, Mock { check_close_after_bye: true, ..Mock::default() }, ok_only),
        // ---- added for the mutation score (crates/conformance/MUTANTS.md)
        ClientCase::new("FRAME-1/3", "get: 1.1 MB in 30-octet chunks, every write ending inside a chunk head", &["FRAME-1", "GET-5", "DATA-3", "DATA-10"], Op::Get, Mock { drip: Some((mid_head.1, Duration::ZERO)), ..get_mock(mid_head.0, After::Continue) }, ok_get_big),
        ClientCase::new("SUM-5/1", "get with a stale partial download `{name}.ferry-part` beside it: the file as sent, never the stale octets", &["SUM-5", "SUM-4", "GET-11"], Op::Get, Mock { get_at: Some(get_at_offset), ..Mock::default() }, ok_get_stale_partial).setup(setup_stale_partial),
        ClientCase::new("NAME-10/2", "get does not write through a symbolic link at `{name}.ferry-part`", &["NAME-10"], Op::Get, Mock { get_at: Some(get_at_offset), ..Mock::default() }, symlink_kept).setup(setup_symlink_partial),
        ClientCase::new("DIR-9/5", "`ok get` with MTIME 0000-01-01T00:00:00Z is accepted", &["DIR-9"], Op::Get, get_mock(year_0, After::Continue), ok_get),
        ClientCase::new("PUT-7/3", "put of an empty file with max-eager=0 uses flow wait", &["PUT-7"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, ..Mock::default() }, ok_put).setup(setup_put_empty),
        ClientCase::new("PUT-20/1", "put: the local file shrinks before go: whole chunks, then abort 430, failure", &["PUT-20", "DATA-12", "ERR-7", "PUT-21"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::ChangeLocal(shrink_local), ..Mock::default() }, aborted_changed).setup(setup_put_1m),
        ClientCase::new("PUT-20/3", "put: the local file shrinks to half before go: abort 430 before any chunk, failure", &["PUT-20", "ERR-7", "PUT-21"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::ChangeLocal(shrink_local_small), ..Mock::default() }, aborted_changed).setup(setup_put_small),
        ClientCase::new("PUT-20/2", "put: the local file grows before go: exactly SIZE octets, or abort 430", &["PUT-20", "PUT-1", "ERR-7"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::ChangeLocal(grow_local), ..Mock::default() }, grown_sent_or_aborted).setup(setup_put_small),
        ClientCase::new("ERR-10/2", "`go` as the reply to an eager put: failure", &["ERR-10", "PUT-4", "PUT-21"], Op::Put, Mock { put: PutAnswer::ReplyWith(b"go\n".to_vec(), After::Hold), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("ERR-10/3", "`ok put` instead of go: failure, no payload", &["ERR-10", "PUT-5", "PUT-21"], Op::Put, Mock { greeting: greeting_eager(0), max_eager: 0, put: PutAnswer::Refuse(format!("ok put 100 {}\n", Digest::of(b"x")).into_bytes()), ..Mock::default() }, failed_only).setup(setup_put_small),
        ClientCase::new("ERR-10/4", "dir answered with `ok get`: failure, nothing created", &["ERR-10"], Op::Dir, Mock { dir: Answer { bytes: format!("ok get 5 {MTIME}\ndata 5\nhelloend {}\n", Digest::of(b"hello")).into_bytes(), then: After::Hold }, ..Mock::default() }, failed_only),
        ClientCase::new("ERR-10/5", "get answered with `bye`: failure, no file", &["ERR-10", "CLOSE-7"], Op::Get, get_mock(b"bye\n".to_vec(), After::Hold), failed_no_file),
        ClientCase::new("HELLO-6/2", "a greeting ending in CR LF is accepted", &["HELLO-6", "FRAME-3"], Op::Get, Mock { greeting: GREETING.replace('\n', "\r\n").into_bytes(), ..get_mock(get_reply(&c, 1000), After::Continue) }, ok_get),
        ClientCase::new("HELLO-10/2", "a greeting `ferry/10`: no version 1, failure, nothing sent", &["HELLO-10"], Op::Get, Mock { greeting: GREETING.replace("ferry/1 ", "ferry/10 ").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/8", "a greeting with stall=0: failure, nothing sent", &["HELLO-9", "HELLO-7"], Op::Get, Mock { greeting: GREETING.replace("stall=60", "stall=0").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/9", "a greeting with max-name=256: failure, nothing sent", &["HELLO-9", "HELLO-5"], Op::Get, Mock { greeting: GREETING.replace("max-name=255", "max-name=256").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/10", "a greeting listing an extension twice: failure, nothing sent", &["HELLO-9", "EXT-1"], Op::Get, Mock { greeting: GREETING.replace("stall=60", "stall=60 ext=x-zip,x-zip").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/11", "a greeting with max-size=2^64: failure, nothing sent", &["HELLO-9", "FRAME-5"], Op::Get, Mock { greeting: GREETING.replace("max-size=1099511627776", "max-size=18446744073709551616").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
        ClientCase::new("HELLO-9/12", "a greeting with two spaces between fields: failure, nothing sent", &["HELLO-9", "FRAME-7"], Op::Get, Mock { greeting: GREETING.replace("ferry/1 ", "ferry/1  ").into_bytes(), after_greeting: After::Hold, ..Mock::default() }, failed_no_file),
    ]
}
