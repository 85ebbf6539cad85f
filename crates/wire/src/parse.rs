//! nom parsers, one per ABNF rule of `spec/grammar.abnf`, each quoting its rule.
//!
//! They run on the content of one complete line (without its eol): the line splitter in
//! [`crate::decode`] has already made truncation an `Incomplete` result, so these use nom's
//! `complete` combinators. The error type is private to the crate.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while_m_n, take_while1};
use nom::combinator::{all_consuming, cut, map, opt, value};
use nom::error::{ContextError, ErrorKind, ParseError, context};
use nom::multi::separated_list1;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::code::Code;
use crate::digest::{DIGEST_LABEL, Digest};
use crate::message::{
    ChunkLen, ErrorReply, Frame, Greeting, Hello, LIMIT_PARAMS, Limits, ParamSlot, PutFlow,
    PutMode, Reply, Request,
};
use crate::name::{FileName, NameError};
use crate::text::{ExtName, ParamName, ParamValue, Text, Version};
use crate::time::Timestamp;

/// The crate-private parse error: where it failed, in which rule, and for names why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PErr<'a> {
    pub input: &'a [u8],
    pub rule: Option<&'static str>,
    pub name: Option<NameError>,
}

impl<'a> ParseError<&'a [u8]> for PErr<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        Self {
            input,
            rule: None,
            name: None,
        }
    }
    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

impl<'a> ContextError<&'a [u8]> for PErr<'a> {
    /// The innermost rule wins: it says most precisely what was expected.
    fn add_context(_input: &'a [u8], ctx: &'static str, mut other: Self) -> Self {
        other.rule.get_or_insert(ctx);
        other
    }
}

pub(crate) type PResult<'a, O> = IResult<&'a [u8], O, PErr<'a>>;

pub(crate) fn fail<'a, O>(input: &'a [u8], rule: &'static str) -> PResult<'a, O> {
    Err(nom::Err::Error(PErr {
        input,
        rule: Some(rule),
        name: None,
    }))
}

pub(crate) fn sp(i: &[u8]) -> PResult<'_, &[u8]> {
    context("SP", tag(&b" "[..])).parse(i)
}

/// ```abnf
/// u64           = "0" / (%x31-39 *19DIGIT)
/// ```
/// At most 18446744073709551615 (FRAME-5). Errors carry no rule name: the caller names the
/// field (`offset`, `size`, `count`, `chunk-size`).
pub(crate) fn u64_(i: &[u8]) -> PResult<'_, u64> {
    let (rest_, digits) = take_while1(|b: u8| b.is_ascii_digit()).parse(i)?;
    let unnamed = || {
        Err(nom::Err::Error(PErr {
            input: i,
            rule: None,
            name: None,
        }))
    };
    if digits.len() > 1 && digits[0] == b'0' {
        return unnamed();
    }
    let mut n: u64 = 0;
    for &d in digits {
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(v) => n = v,
            None => return unnamed(),
        }
    }
    Ok((rest_, n))
}

/// ```abnf
/// version       = %x31-39 *4DIGIT
/// ```
pub(crate) fn version(i: &[u8]) -> PResult<'_, Version> {
    let (r, digits) =
        context("version", take_while_m_n(1, 5, |b: u8| b.is_ascii_digit())).parse(i)?;
    if digits[0] == b'0' || r.first().is_some_and(u8::is_ascii_digit) {
        return fail(i, "version");
    }
    let n = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    match Version::new(n) {
        Ok(v) => Ok((r, v)),
        Err(_) => fail(i, "version"),
    }
}

/// ```abnf
/// name          = name-first [*name-mid name-last]
/// ```
/// Takes the rest of the line and applies every NAME rule ([`FileName::from_bytes`]).
/// A bad name is a `Failure` that carries the [`NameError`].
pub(crate) fn name(i: &[u8]) -> PResult<'_, FileName> {
    match FileName::from_bytes(i) {
        Ok(n) => Ok((&i[i.len()..], n)),
        Err(e) => Err(nom::Err::Failure(PErr {
            input: i,
            rule: Some("name"),
            name: Some(e),
        })),
    }
}

/// ```abnf
/// text          = 1*text-char
/// ```
pub(crate) fn text(i: &[u8]) -> PResult<'_, Text> {
    let parsed = std::str::from_utf8(i).ok().and_then(|s| Text::new(s).ok());
    match parsed {
        Some(t) => Ok((&i[i.len()..], t)),
        None => fail(i, "text"),
    }
}

/// ```abnf
/// code          = 3DIGIT
/// ```
pub(crate) fn code(i: &[u8]) -> PResult<'_, Code> {
    let (r, d) = context("code", take_while_m_n(3, 3, |b: u8| b.is_ascii_digit())).parse(i)?;
    let n = d.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    match Code::new(n) {
        Some(c) if !r.first().is_some_and(u8::is_ascii_digit) => Ok((r, c)),
        _ => fail(i, "code"),
    }
}

fn digits_n(n: usize) -> impl Fn(&[u8]) -> PResult<'_, u32> {
    move |i| {
        let (r, d) = take_while_m_n(n, n, |b: u8| b.is_ascii_digit()).parse(i)?;
        Ok((r, d.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))))
    }
}

/// ```abnf
/// mtime         = year "-" month "-" day %s"T" hour ":" minute ":" second %s"Z"
/// ```
/// The fields must name a real date and time (DIR-5).
pub(crate) fn mtime(i: &[u8]) -> PResult<'_, Timestamp> {
    let (r, (y, _, mo, _, d, _, h, _, mi, _, s, _)) = context(
        "mtime",
        (
            digits_n(4),
            tag(&b"-"[..]),
            digits_n(2),
            tag(&b"-"[..]),
            digits_n(2),
            tag(&b"T"[..]),
            digits_n(2),
            tag(&b":"[..]),
            digits_n(2),
            tag(&b":"[..]),
            digits_n(2),
            tag(&b"Z"[..]),
        ),
    )
    .parse(i)?;
    match Timestamp::from_fields(y, mo, d, h, mi, s) {
        Some(t) => Ok((r, t)),
        None => fail(i, "mtime"),
    }
}

/// ```abnf
/// digest        = %s"xxh3-128:" 32lc-hex
/// ```
pub(crate) fn digest(i: &[u8]) -> PResult<'_, Digest> {
    let (r, hex) = context(
        "digest",
        preceded(
            tag(DIGEST_LABEL.as_bytes()),
            take_while_m_n(32, 32, |b: u8| {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }),
        ),
    )
    .parse(i)?;
    match Digest::from_lc_hex(hex) {
        Some(d) if !r.first().is_some_and(u8::is_ascii_hexdigit) => Ok((r, d)),
        _ => fail(i, "digest"),
    }
}

/// ```abnf
/// put-mode      = %s"new" / %s"replace"
/// ```
pub(crate) fn put_mode(i: &[u8]) -> PResult<'_, PutMode> {
    context(
        "put-mode",
        alt((
            value(PutMode::New, tag(&b"new"[..])),
            value(PutMode::Replace, tag(&b"replace"[..])),
        )),
    )
    .parse(i)
}

/// ```abnf
/// put-flow      = %s"wait" / %s"now"
/// ```
pub(crate) fn put_flow(i: &[u8]) -> PResult<'_, PutFlow> {
    context(
        "put-flow",
        alt((
            value(PutFlow::Wait, tag(&b"wait"[..])),
            value(PutFlow::Now, tag(&b"now"[..])),
        )),
    )
    .parse(i)
}

/// ```abnf
/// dir-req       = %s"dir" eol
/// ```
pub(crate) fn dir_req(i: &[u8]) -> PResult<'_, Request> {
    value(Request::Dir, tag(&b"dir"[..])).parse(i)
}

/// ```abnf
/// get-req       = %s"get" SP offset SP name eol
/// ```
pub(crate) fn get_req(i: &[u8]) -> PResult<'_, Request> {
    let (i, _) = tag(&b"get "[..]).parse(i)?;
    let (i, (offset, _, name)) = cut((context("offset", u64_), sp, name)).parse(i)?;
    Ok((i, Request::Get { offset, name }))
}

/// The fields of a put line before its name: what a server needs to know where the payload
/// of a put with a bad name ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PutHead {
    /// Declared size.
    pub size: u64,
    /// Declared mode.
    pub mode: PutMode,
    /// Declared flow: with `now` a payload follows the line whatever the verdict.
    pub flow: PutFlow,
}

/// `put SP size SP put-mode SP put-flow SP`: everything of `put-req` before the name.
pub(crate) fn put_head(i: &[u8]) -> PResult<'_, PutHead> {
    let (i, _) = tag(&b"put "[..]).parse(i)?;
    let (i, (size, _, mode, _, flow, _)) =
        cut((context("size", u64_), sp, put_mode, sp, put_flow, sp)).parse(i)?;
    Ok((i, PutHead { size, mode, flow }))
}

/// ```abnf
/// put-req       = %s"put" SP size SP put-mode SP put-flow SP name eol
/// ```
pub(crate) fn put_req(i: &[u8]) -> PResult<'_, Request> {
    let (i, PutHead { size, mode, flow }) = put_head(i)?;
    let (i, name) = name(i)?;
    Ok((
        i,
        Request::Put {
            size,
            mode,
            flow,
            name,
        },
    ))
}

/// ```abnf
/// version-req   = %s"version" SP version eol
/// ```
pub(crate) fn version_req(i: &[u8]) -> PResult<'_, Request> {
    map(
        preceded(tag(&b"version "[..]), cut(version)),
        Request::Version,
    )
    .parse(i)
}

/// ```abnf
/// close-req     = %s"close" eol
/// ```
pub(crate) fn close_req(i: &[u8]) -> PResult<'_, Request> {
    value(Request::Close, tag(&b"close"[..])).parse(i)
}

/// ```abnf
/// request       = dir-req / get-req / put-req / version-req / close-req
/// ```
pub(crate) fn request(i: &[u8]) -> PResult<'_, Request> {
    context(
        "request",
        all_consuming(alt((dir_req, get_req, put_req, version_req, close_req))),
    )
    .parse(i)
}

/// ```abnf
/// param         = limit-param / rate-param / ext-param / other-param
/// other-param   = param-name "=" param-value
/// ```
/// Splits one param; [`greeting`] interprets limit and ext params by name.
fn param(i: &[u8]) -> PResult<'_, (&[u8], &[u8])> {
    let (i, name) = context(
        "param-name",
        take_while1(|b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
    )
    .parse(i)?;
    if !name[0].is_ascii_lowercase() {
        return fail(i, "param-name");
    }
    let (i, _) = context("param", tag(&b"="[..])).parse(i)?;
    let (i, val) = take_while(|b: u8| b.is_ascii_graphic()).parse(i)?;
    Ok((i, (name, val)))
}

/// ```abnf
/// ext-param     = %s"ext=" ext-list
/// ext-list      = [ext-name *("," ext-name)]
/// ```
/// Names must be distinct (EXT-1).
fn ext_list(v: &[u8]) -> Option<Vec<ExtName>> {
    let mut out: Vec<ExtName> = Vec::new();
    if v.is_empty() {
        return Some(out);
    }
    for e in v.split(|&b| b == b',') {
        let e = std::str::from_utf8(e)
            .ok()
            .and_then(|e| ExtName::new(e).ok())?;
        if out.contains(&e) {
            return None;
        }
        out.push(e);
    }
    Some(out)
}

/// ```abnf
/// greeting      = %s"ferry/" version-list *(SP param) eol
/// rate-param    = %s"min-rate=" u64
/// ```
/// The seven limit params must each appear exactly once, `ext` and `min-rate` at most once
/// (HELLO-2, HELLO-3); other params are kept, not interpreted (HELLO-6).
pub(crate) fn greeting(line: &[u8]) -> PResult<'_, Greeting> {
    let (mut i, versions) = preceded(
        tag(&b"ferry/"[..]),
        context("version-list", separated_list1(tag(&b","[..]), version)),
    )
    .parse(line)?;
    let mut known: [Option<u64>; 7] = [None; 7];
    let mut ext: Option<Vec<ExtName>> = None;
    let mut min_rate: Option<u64> = None;
    let mut other: Vec<(ParamName, ParamValue)> = Vec::new();
    let mut order = Vec::new();
    while !i.is_empty() {
        let start = i;
        let (r, (k, v)) = preceded(sp, param).parse(i)?;
        i = r;
        let k_str = std::str::from_utf8(k).unwrap_or_default();
        if k_str == "ext" {
            match ext_list(v) {
                Some(list) if ext.is_none() => ext = Some(list),
                _ => return fail(start, "ext-param"),
            }
            order.push(ParamSlot::Ext);
        } else if k_str == "min-rate" {
            match all_consuming(u64_).parse(v) {
                Ok((_, n)) if min_rate.is_none() => min_rate = Some(n),
                _ => return fail(start, "rate-param"),
            }
            order.push(ParamSlot::MinRate);
        } else if let Some(idx) = LIMIT_PARAMS.iter().position(|&p| p == k_str) {
            match all_consuming(u64_).parse(v) {
                Ok((_, n)) if known[idx].is_none() => known[idx] = Some(n),
                _ => return fail(start, "limit-param"),
            }
            order.push(ParamSlot::Limit(idx));
        } else {
            let name = ParamName::new(k_str).ok();
            let val = std::str::from_utf8(v)
                .ok()
                .and_then(|v| ParamValue::new(v).ok());
            match (name, val) {
                (Some(n), Some(v)) if !other.iter().any(|(o, _)| *o == n) => {
                    order.push(ParamSlot::Other(other.len()));
                    other.push((n, v));
                }
                _ => return fail(start, "other-param"),
            }
        }
    }
    let [
        Some(max_line),
        Some(max_name),
        Some(max_size),
        Some(max_chunk),
        Some(max_eager),
        Some(idle),
        Some(stall),
    ] = known
    else {
        return fail(i, "greeting");
    };
    let limits = Limits {
        max_line,
        max_name,
        max_size,
        max_chunk,
        max_eager,
        idle,
        stall,
    };
    Ok((
        i,
        Greeting::from_parts(
            versions,
            limits,
            min_rate,
            ext.unwrap_or_default(),
            other,
            order,
        ),
    ))
}

/// ```abnf
/// err-reply     = %s"err" SP code [SP text] eol
/// ```
pub(crate) fn err_reply(i: &[u8]) -> PResult<'_, ErrorReply> {
    let (i, _) = tag(&b"err "[..]).parse(i)?;
    let (i, (code, text)) = cut((code, opt(preceded(sp, cut(text))))).parse(i)?;
    Ok((i, ErrorReply { code, text }))
}

/// ```abnf
/// server-hello  = greeting / err-reply
/// ```
pub(crate) fn server_hello(i: &[u8]) -> PResult<'_, Hello> {
    context(
        "server-hello",
        all_consuming(alt((
            map(greeting, Hello::Greeting),
            map(err_reply, Hello::Refused),
        ))),
    )
    .parse(i)
}

/// ```abnf
/// dir-ok        = %s"ok" SP %s"dir" SP count eol *entry
/// ```
/// The line only; the entries are decoded one by one.
pub(crate) fn dir_ok(i: &[u8]) -> PResult<'_, Reply> {
    map(
        preceded(tag(&b"ok dir "[..]), cut(context("count", u64_))),
        |count| Reply::DirOk { count },
    )
    .parse(i)
}

/// ```abnf
/// get-ok        = %s"ok" SP %s"get" SP size SP mtime eol payload
/// ```
/// The line only; the payload is decoded frame by frame.
pub(crate) fn get_ok(i: &[u8]) -> PResult<'_, Reply> {
    let (i, _) = tag(&b"ok get "[..]).parse(i)?;
    let (i, (size, _, mtime)) = cut((context("size", u64_), sp, mtime)).parse(i)?;
    Ok((i, Reply::GetOk { size, mtime }))
}

/// ```abnf
/// put-go        = %s"go" eol
/// ```
pub(crate) fn put_go(i: &[u8]) -> PResult<'_, Reply> {
    value(Reply::Go, tag(&b"go"[..])).parse(i)
}

/// ```abnf
/// put-ok        = %s"ok" SP %s"put" SP size SP digest eol
/// ```
pub(crate) fn put_ok(i: &[u8]) -> PResult<'_, Reply> {
    let (i, _) = tag(&b"ok put "[..]).parse(i)?;
    let (i, (size, _, digest)) = cut((context("size", u64_), sp, digest)).parse(i)?;
    Ok((i, Reply::PutOk { size, digest }))
}

/// ```abnf
/// version-ok    = %s"ok" SP %s"version" SP version eol
/// ```
pub(crate) fn version_ok(i: &[u8]) -> PResult<'_, Reply> {
    map(
        preceded(tag(&b"ok version "[..]), cut(version)),
        Reply::VersionOk,
    )
    .parse(i)
}

/// ```abnf
/// bye           = %s"bye" eol
/// ```
pub(crate) fn bye(i: &[u8]) -> PResult<'_, Reply> {
    value(Reply::Bye, tag(&b"bye"[..])).parse(i)
}

/// ```abnf
/// reply         = dir-ok / get-ok / put-go / put-ok / version-ok / bye / err-reply
/// ```
pub(crate) fn reply(i: &[u8]) -> PResult<'_, Reply> {
    context(
        "reply",
        all_consuming(alt((
            dir_ok,
            get_ok,
            put_go,
            put_ok,
            version_ok,
            bye,
            map(err_reply, Reply::Err),
        ))),
    )
    .parse(i)
}

/// ```abnf
/// entry         = size SP mtime SP name eol
/// ```
pub(crate) fn entry(i: &[u8]) -> PResult<'_, crate::message::Entry> {
    let (i, (size, _, mtime, _, name)) = context(
        "entry",
        all_consuming((context("size", u64_), sp, mtime, sp, name)),
    )
    .parse(i)?;
    Ok((i, crate::message::Entry { size, mtime, name }))
}

/// `size SP mtime SP`: everything of `entry` before the name. A listing line that matches
/// this but whose name field is not a valid name is skipped by a client (NAME-14).
pub(crate) fn entry_head(i: &[u8]) -> PResult<'_, (u64, Timestamp)> {
    let (i, (size, _, mtime, _)) = (context("size", u64_), sp, mtime, sp).parse(i)?;
    Ok((i, (size, mtime)))
}

/// ```abnf
/// chunk-head    = %s"data" SP chunk-size eol
/// ```
/// The size must be 1 to 1048576 (DATA-2).
pub(crate) fn chunk_head(i: &[u8]) -> PResult<'_, Frame> {
    let (r, n) = preceded(tag(&b"data "[..]), cut(context("chunk-size", u64_))).parse(i)?;
    match ChunkLen::new(n) {
        Some(len) => Ok((r, Frame::Data(len))),
        None => Err(nom::Err::Failure(PErr {
            input: &i[5..],
            rule: Some("chunk-size"),
            name: None,
        })),
    }
}

/// ```abnf
/// end           = %s"end" SP digest eol
/// ```
pub(crate) fn end(i: &[u8]) -> PResult<'_, Frame> {
    map(preceded(tag(&b"end "[..]), cut(digest)), Frame::End).parse(i)
}

/// ```abnf
/// abort         = %s"abort" SP code [SP text] eol
/// ```
pub(crate) fn abort(i: &[u8]) -> PResult<'_, Frame> {
    let (i, _) = tag(&b"abort "[..]).parse(i)?;
    let (i, (code, text)) = cut((code, opt(preceded(sp, cut(text))))).parse(i)?;
    Ok((i, Frame::Abort(ErrorReply { code, text })))
}

/// ```abnf
/// payload       = *chunk trailer
/// ```
/// One frame line of a payload: a chunk head or a trailer.
pub(crate) fn frame(i: &[u8]) -> PResult<'_, Frame> {
    context("payload", all_consuming(alt((chunk_head, end, abort)))).parse(i)
}
