//! Targeted server cases: what the example transcripts do not cover, one requirement (or a
//! small group) per case. The table is here, with the helpers the cases share; the cases
//! live in one file per part of the spec.

use std::time::{Duration, Instant, SystemTime};

use ferry_wire::{Code, Digest, PutFlow, PutMode, Reply, Timestamp};

use super::Ctx;
use crate::case::{Done, Res, ensure, unimplemented, violation};
use crate::net::{
    Conn, Endpoint, GetReply, LineRead, Trailer, after, payload_of, put_line, show, show_reply,
};

pub(super) mod auth;
mod connection;
mod errors;
mod files;
mod framing;
mod names;
mod pipelining;
mod put;
mod session;
mod time;
pub(super) mod tls;
pub(super) mod tree;

use connection::*;
use errors::*;
use files::*;
use framing::*;
use names::*;
use pipelining::*;
use put::*;
use session::*;
use time::*;

type CaseFn = fn(&mut Ctx<'_>) -> Res<Done>;

/// (id, title, requirements, body). The id's first part is the main requirement checked.
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "CONN-4/1",
        "greeting first, unprompted, valid; then nothing unsolicited",
        &[
            "CONN-4", "HELLO-1", "HELLO-2", "HELLO-3", "HELLO-4", "HELLO-5", "EXT-1", "CONN-8",
        ],
        conn_4_greeting,
    ),
    (
        "CONN-7/1",
        "sessions are independent; the server keeps listening after a session fails",
        &["CONN-7"],
        conn_7_independent,
    ),
    (
        "CONN-3/1",
        "at the session limit a connection gets `err 420 busy` and is closed",
        &["CONN-3", "CONN-6"],
        conn_3_busy,
    ),
    (
        "HELLO-7/1",
        "a put of exactly max-size is not refused with 513",
        &["HELLO-7", "PUT-2"],
        hello_7_max_size,
    ),
    (
        "HELLO-7/2",
        "an eager put of exactly max-eager is accepted",
        &["HELLO-7", "PUT-6", "PUT-4"],
        hello_7_max_eager,
    ),
    (
        "HELLO-8/1",
        "default limits (reported)",
        &["HELLO-8"],
        hello_8_defaults,
    ),
    (
        "FRAME-1/1",
        "every octet of a session in its own write",
        &["FRAME-1", "FRAME-6"],
        frame_1_octet_writes,
    ),
    (
        "FRAME-1/2",
        "put, payload and further requests in one write",
        &["FRAME-1", "PUT-4", "PIPE-1"],
        frame_1_one_write,
    ),
    (
        "FRAME-2/1",
        "a line of exactly 4096 octets, eol included, is not too long",
        &["FRAME-2", "ERR-6"],
        frame_2_exact_limit,
    ),
    (
        "FRAME-2/2",
        "4096 octets without LF: 501, close, nothing more read",
        &["FRAME-2", "ERR-5", "ERR-8"],
        frame_2_too_long,
    ),
    (
        "FRAME-3/1",
        "CR LF accepted on request and payload lines, and not part of the name",
        &["FRAME-3"],
        frame_3_crlf,
    ),
    (
        "FRAME-4/1",
        "a request line that is not UTF-8 is malformed (500), the session goes on",
        &["FRAME-4", "ERR-6"],
        frame_4_utf8,
    ),
    (
        "FRAME-5/1",
        "numbers with leading zeros, signs or above 2^64-1 are malformed",
        &["FRAME-5", "FRAME-7", "ERR-6"],
        frame_5_numbers,
    ),
    (
        "FRAME-7/1",
        "keyword and spacing variants are refused with 500",
        &["FRAME-7", "ERR-6"],
        frame_7_variants,
    ),
    (
        "ERR-6/1",
        "put lines not parsable up to the name: 502, then close",
        &["ERR-6", "ERR-5", "ERR-8"],
        err_6_put_malformed,
    ),
    (
        "ERR-6/2",
        "lines that only resemble put get 500 and the session goes on",
        &["ERR-6"],
        err_6_not_put,
    ),
    (
        "ERR-1/1",
        "error sweep: only codes of the table, connection usable after non-closing codes",
        &["ERR-1", "ERR-2", "ERR-5", "PIPE-5"],
        err_1_sweep,
    ),
    (
        "ERR-7/1",
        "error texts begin with the code's name",
        &["ERR-7"],
        err_7_text,
    ),
    (
        "NAME-7/1",
        "get with a name breaking each NAME rule: 510",
        &[
            "NAME-7", "NAME-1", "NAME-2", "NAME-3", "NAME-4", "NAME-5", "GET-1", "SEC-1", "SEC-2",
        ],
        name_7_get,
    ),
    (
        "NAME-7/2",
        "put wait with invalid names: 510 before any go",
        &["NAME-7", "PUT-2", "PUT-3"],
        name_7_put_wait,
    ),
    (
        "PUT-9/1",
        "eager put with an invalid name: payload discarded, then 510",
        &["PUT-9", "NAME-7"],
        put_9_bad_name,
    ),
    (
        "NAME-6/1",
        "names compare octet by octet (case-sensitive, no normalisation)",
        &["NAME-6", "NAME-5"],
        name_6_octets,
    ),
    (
        "GET-1/1",
        "valid names that do not exist: 511 (not 510)",
        &["GET-1", "NAME-2"],
        get_1_absent,
    ),
    (
        "DIR-2/1",
        "an upload in progress is neither listed nor readable",
        &["DIR-2", "PUT-10"],
        dir_2_in_progress,
    ),
    (
        "DIR-4/1",
        "listing: COUNT entries, bytewise order, sizes",
        &["DIR-1", "DIR-3", "DIR-4", "DIR-6"],
        dir_4_order,
    ),
    (
        "DIR-5/1",
        "MTIME is the commit time in UTC; ok get repeats it",
        &["DIR-5", "GET-2"],
        dir_5_mtime,
    ),
    (
        "GET-3/1",
        "get from offsets: tail octets, whole-file digest, chunking",
        &["GET-3", "GET-5", "SUM-3", "DATA-1", "DATA-2", "DATA-4"],
        get_3_offsets,
    ),
    (
        "GET-4/1",
        "OFFSET > SIZE: 515 and no payload; OFFSET = SIZE: trailer only",
        &["GET-4", "GET-5"],
        get_4_bad_offset,
    ),
    (
        "DATA-13/1",
        "large files go in large chunks",
        &["DATA-13"],
        data_13_chunks,
    ),
    (
        "SUM-1/1",
        "the digest test vectors of section 7.2, both directions",
        &["SUM-1", "PUT-18", "PUT-12", "PUT-4"],
        sum_1_vectors,
    ),
    (
        "PUT-11/1",
        "digest mismatch: 433, nothing visible, replaced file kept",
        &["PUT-11", "SUM-2", "PUT-10", "PUT-12"],
        put_11_mismatch,
    ),
    (
        "PUT-15/1",
        "client abort: 434, nothing visible, connection usable",
        &["PUT-15", "DATA-9", "ERR-4"],
        put_15_abort,
    ),
    (
        "PUT-16/1",
        "disconnect in the middle of an upload leaves nothing visible",
        &["PUT-16", "CLOSE-4", "PUT-10"],
        put_16_disconnect,
    ),
    (
        "PUT-12/1",
        "a replace is atomic for readers",
        &["PUT-12", "PUT-10"],
        put_12_atomic,
    ),
    (
        "PUT-13/1",
        "new never replaces a file created after its check",
        &["PUT-13"],
        put_13_race,
    ),
    (
        "PUT-2/1",
        "SIZE above max-size: 513 before any payload; checks in order",
        &["PUT-2", "PUT-3"],
        put_2_too_large,
    ),
    (
        "PUT-3/1",
        "wait put refused (exists): only err, next line is a new request",
        &["PUT-3", "PUT-2", "PUT-4"],
        put_3_refused_early,
    ),
    (
        "PUT-9/2",
        "eager put refused (exists): payload discarded, connection in sync",
        &["PUT-9", "PUT-2"],
        put_9_exists,
    ),
    (
        "PUT-8/1",
        "eager put above max-eager: 502 and close, payload not read",
        &["PUT-8", "ERR-5"],
        put_8_eager_too_large,
    ),
    (
        "PUT-8/3",
        "max-eager=0: every eager put, even of 0 octets, gets 502 and close; wait puts work",
        &["PUT-8", "ERR-5", "HELLO-7"],
        put_8_eager_disabled,
    ),
    (
        "PUT-19/1",
        "a failed upload is not resumed: the next put starts from scratch",
        &["PUT-19"],
        put_19_no_resume,
    ),
    (
        "DATA-5/1",
        "framing violations in an upload: 502, close, nothing visible",
        &["DATA-5", "DATA-6", "DATA-2", "PUT-16"],
        data_5_framing,
    ),
    (
        "PIPE-1/1",
        "50 pipelined requests in one write: replies in order",
        &["PIPE-1", "PIPE-5", "PIPE-7"],
        pipe_1_fifty,
    ),
    (
        "PIPE-1/2",
        "the effect of a put is complete before the next request",
        &["PIPE-1"],
        pipe_1_effects,
    ),
    (
        "PIPE-1/3",
        "3 MiB of pipelined eager puts in one write (more than a server buffers at once): \
         every one committed, replies in order",
        &["PIPE-1", "FRAME-1", "PUT-6"],
        pipe_1_stream,
    ),
    (
        "PIPE-1/4",
        "2 MiB of pipelined eager puts in 1-octet chunks (frame heads straddle every read): \
         every one committed, replies in order",
        &["PIPE-1", "FRAME-1", "DATA-2"],
        pipe_1_tiny_chunks,
    ),
    (
        "ERR-8/1",
        "nothing is executed after a closing error",
        &["ERR-8", "PIPE-7"],
        err_8_after_502,
    ),
    (
        "CLOSE-1/1",
        "close: bye, close, nothing after close executed",
        &["CLOSE-1", "PIPE-7"],
        close_1_nothing_after,
    ),
    (
        "CLOSE-4/1",
        "EOF without close: no bye, incomplete request discarded",
        &["CLOSE-4"],
        close_4_eof,
    ),
    (
        "CLOSE-5/1",
        "requests received before EOF are still answered",
        &["CLOSE-5"],
        close_5_half_close,
    ),
    (
        "CLOSE-6/1",
        "a closing error survives unread input",
        &["CLOSE-6"],
        close_6_linger,
    ),
    (
        "VER-5/1",
        "version: unsupported 503, not first 500, malformed 500",
        &["VER-1", "VER-4", "VER-5", "VER-6"],
        ver_5_versions,
    ),
    (
        "EXT-4/1",
        "an extension request that was not offered is refused, the session goes on",
        &["EXT-4"],
        ext_4_unlisted,
    ),
    (
        "SEC-10/1",
        "read-only server: 514 after the name check, nothing changes",
        &["SEC-10", "PUT-2", "PUT-9"],
        sec_10_read_only,
    ),
    (
        "TIME-1/1",
        "idle timeout: not before idle, then the session ends",
        &["TIME-1", "TIME-4", "TIME-5", "HELLO-7"],
        time_1_idle,
    ),
    (
        "TIME-2/1",
        "stall timeout inside a request line",
        &["TIME-2", "TIME-5", "HELLO-7"],
        time_2_line,
    ),
    (
        "TIME-2/2",
        "stall timeout inside an upload: session ends, nothing visible",
        &["TIME-2", "TIME-4", "PUT-16"],
        time_2_upload,
    ),
    (
        "TIME-3/1",
        "no idle timeout during a slow but progressing upload",
        &["TIME-3", "TIME-1"],
        time_3_slow_upload,
    ),
    (
        "TIME-9/1",
        "an upload dripped slower than min-rate is timed out, though each octet comes within stall",
        &["TIME-9", "TIME-4", "TIME-5", "HELLO-7"],
        time_9_dripped_upload,
    ),
    (
        "TIME-2/5",
        "a download read in bursts with pauses shorter than stall completes",
        &["TIME-2", "TIME-3", "HELLO-7"],
        time_2_slow_reader,
    ),
    (
        "TIME-2/6",
        "a client that accepts no output for longer than stall is dropped, without `end`",
        &["TIME-2", "TIME-5"],
        time_2_stuck_reader,
    ),
];

// ------------------------------------------------------------------- helpers ---

/// `n` octets of a pattern that includes LF, CR, NUL and non-UTF-8 octets.
pub(super) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u64 * 31 + u64::from(seed) * 7) % 251) as u8)
        .collect()
}

/// Uploads `data` as `name` (replace, wait) in its own session.
fn upload(ctx: &Ctx<'_>, name: &[u8], data: &[u8]) -> Res<()> {
    let mut c = ctx.session()?;
    c.put_ok("PUT-12", name, PutMode::Replace, PutFlow::Wait, data)?;
    c.close()
}

/// The names of the case's prefix in a listing from a new session.
fn listed(ctx: &Ctx<'_>) -> Res<Vec<Vec<u8>>> {
    let mut c = ctx.session()?;
    let l = c.dir("DIR-1")?;
    let _ = c.close();
    Ok(l.into_iter()
        .map(|e| e.name.as_bytes().to_vec())
        .filter(|n| n.starts_with(ctx.prefix.as_bytes()))
        .collect())
}

/// Checks that `name` is neither listed nor readable.
fn invisible(ctx: &Ctx<'_>, req: &str, name: &[u8], why: &str) -> Res<()> {
    let names = listed(ctx)?;
    ensure(
        !names.iter().any(|n| n == name),
        req,
        format!("{} not listed ({why})", show(name)),
        || format!("{} is listed", show(name)),
    )?;
    let mut c = ctx.session()?;
    let r = c.get(req, 0, name)?;
    let _ = c.close();
    match r {
        GetReply::Err(e) if e.code == Code::NOT_FOUND => Ok(()),
        other => Err(violation(
            req,
            format!("err 511 for {} ({why})", show(name)),
            other.show(),
        )),
    }
}

fn expect_content(c: &mut Conn, req: &str, name: &[u8], want: &[u8]) -> Res<()> {
    let got = c.get_ok(req, name)?;
    ensure(
        got == want,
        req,
        format!(
            "{} octets of content {:?}",
            want.len(),
            show(&want[..want.len().min(24)])
        ),
        || format!("{} octets {:?}", got.len(), show(&got[..got.len().min(24)])),
    )
}

fn get_line(offset: u64, name: &[u8]) -> Vec<u8> {
    let mut l = format!("get {offset} ").into_bytes();
    l.extend_from_slice(name);
    l.push(b'\n');
    l
}

/// A wait put that gets `go`, then `head` of its payload; the connection is returned.
fn start_upload(ctx: &Ctx<'_>, name: &[u8], mode: PutMode, size: u64, head: &[u8]) -> Res<Conn> {
    let mut c = ctx.session()?;
    c.send("PUT-3", &put_line(size, mode, PutFlow::Wait, name))?;
    c.expect_reply("PUT-3", &Reply::Go)?;
    c.send("PUT-3", head)?;
    Ok(c)
}

pub(super) fn chunk(data: &[u8]) -> Vec<u8> {
    let mut v = format!("data {}\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v
}

pub(super) fn end(data: &[u8]) -> Vec<u8> {
    format!("end {}\n", Digest::of(data)).into_bytes()
}
