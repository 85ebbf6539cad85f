//! The operations of a random session, their strategies, and their rendering to octets. The
//! `Debug` of an operation is what goes on the wire (request lines in the transcript escapes
//! of section 14, payloads described in `⟪…⟫`), so that a shrunk failing case reads as a
//! session.

use std::fmt;

use ferry_wire::{Digest, PutFlow, PutMode};
use proptest::prelude::*;

use crate::content::{Content, content, small_content};
use crate::exec::Step;
use crate::oracle::{self, Class, escape};

/// Largest chunk (DATA-2).
pub const MAX_CHUNK: usize = 1 << 20;

thread_local! {
    /// While an [`Op::Crlf`] is rendered: end well-formed lines with CR LF.
    static CRLF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The eol of well-formed lines being rendered: LF, or CR LF inside an [`Op::Crlf`]
/// (FRAME-3: receivers accept both).
fn eol() -> &'static str {
    if CRLF.with(std::cell::Cell::get) {
        "\r\n"
    } else {
        "\n"
    }
}

/// A file name as octets (valid or not).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(pub Vec<u8>);

impl Name {
    /// A name from text.
    pub fn new(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }

    /// Whether it is a valid name ([`oracle::name_is_valid`]).
    pub fn is_valid(&self) -> bool {
        oracle::name_is_valid(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

/// Valid names: the brief's, edge cases of NAME-1 … NAME-5, case variants (NAME-6).
pub const VALID_NAMES: &[&str] = &[
    "射频仿真.pptx",
    "天线15.doc",
    "my report (final).pdf",
    "a",
    "x.",
    "~",
    "é.txt",
    "report.pdf",
    "Report.pdf",
    "a b",
    "😀",
    // NFC edge cases: precomposed, Hangul syllable, a sequence whose composition is
    // excluded (stays decomposed in NFC), a letter assigned in Unicode 17.0 (NAME-13 pins
    // 18.0.0), a line separator and a zero-width space (not controls: allowed by NAME-3 and
    // the grammar).
    "\u{c5}",
    "가",
    "\u{915}\u{93c}",
    "\u{10940}",
    "a\u{2028}b",
    "a\u{200b}b",
];

/// Invalid names: each breaks one rule (NAME-1 … NAME-5, or is the staging area).
pub const INVALID_NAMES: &[&[u8]] = &[
    b".x",
    b"a/b",
    b"..",
    b".",
    b"trail ",
    b" lead",
    "e\u{301}".as_bytes(),
    b"a\\b",
    b"tab\tx",
    b"\xff\xfe",
    b"",
    b".ferry-staging",
    b"del\x7f",
    "c1\u{85}".as_bytes(),
    // Not NFC: a singleton (ANGSTROM SIGN), a composition exclusion, conjoining jamo,
    // combining marks out of canonical order.
    "\u{212b}".as_bytes(),
    "\u{958}".as_bytes(),
    "\u{1100}\u{1161}".as_bytes(),
    "a\u{301}\u{323}".as_bytes(),
    // Not UTF-8: a surrogate, an overlong `/`, a truncated sequence.
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"ab\xe5\xa4",
    // Not assigned in Unicode 18.0.0 (NAME-13): an unassigned code point, a noncharacter.
    "\u{378}".as_bytes(),
    "\u{ffff}".as_bytes(),
];

/// Names of 255 and 256 octets (NAME-2), ASCII or in 3-octet characters.
pub fn long_name(len: usize) -> Name {
    Name(vec![b'n'; len])
}

fn long_names() -> impl Strategy<Value = Name> {
    prop_oneof![
        Just(long_name(255)),
        Just(long_name(256)),
        Just(Name::new(&"天".repeat(85))),
        Just(Name::new(&"天".repeat(86))),
    ]
}

/// The first few valid names, drawn most often so that puts and gets meet.
fn hot_name() -> impl Strategy<Value = Name> {
    proptest::sample::select(&VALID_NAMES[..5]).prop_map(Name::new)
}

/// Names: mostly from the valid pool (so that they collide), some generated, some invalid.
pub fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        8 => hot_name(),
        3 => proptest::sample::select(VALID_NAMES).prop_map(Name::new),
        2 => ferry_wire::strategy::file_name().prop_map(|n| Name(n.as_bytes().to_vec())),
        1 => long_names(),
        4 => proptest::sample::select(INVALID_NAMES).prop_map(|n| Name(n.to_vec())),
    ]
}

/// A valid name.
pub fn valid_name() -> impl Strategy<Value = Name> {
    prop_oneof![
        5 => proptest::sample::select(VALID_NAMES).prop_map(Name::new),
        1 => ferry_wire::strategy::file_name().prop_map(|n| Name(n.as_bytes().to_vec())),
    ]
}

/// How the client ends a put's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// All octets and the right digest.
    End,
    /// All octets and a wrong digest (433).
    Corrupt,
    /// Half the octets, then `abort 431` (434).
    Abort,
    /// The client closes the connection after `keep`‰ of the payload's octets (never the
    /// whole trailer): an aborted upload; nothing becomes visible (PUT-16).
    Disconnect {
        /// Per mille of the payload octets sent.
        keep: u16,
    },
    /// A framing violation (502 and close, DATA-5, DATA-6).
    Framing(Framing),
}

/// A framing violation in a put's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `data 0`.
    ZeroChunk,
    /// `data 1048577`.
    TooBig,
    /// `data 01`.
    LeadingZero,
    /// A chunk that makes the sum exceed SIZE.
    Overrun,
    /// `end` one octet early.
    EarlyEnd,
    /// `end` with an upper-case digest.
    BadDigest,
    /// A line that is neither a chunk head nor a trailer.
    Junk,
    /// 5000 octets without LF where a frame line is due.
    LongLine,
    /// An empty line where a frame line is due.
    EmptyLine,
}

/// One step of a session.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// `dir`.
    Dir,
    /// `get OFFSET NAME`.
    Get {
        /// OFFSET.
        offset: u64,
        /// NAME.
        name: Name,
    },
    /// `put SIZE MODE FLOW NAME` and its payload.
    Put {
        /// MODE.
        mode: PutMode,
        /// FLOW.
        flow: PutFlow,
        /// NAME.
        name: Name,
        /// The file.
        content: Content,
        /// Largest chunk the client sends.
        chunk: usize,
        /// How the payload ends.
        ending: Ending,
    },
    /// `put SIZE MODE FLOW NAME` with a SIZE over `max-size` (1 TiB): 513 for `wait`, 502
    /// for `now` (over `max-eager`); no payload.
    PutHuge {
        /// SIZE.
        size: u64,
        /// FLOW.
        flow: PutFlow,
        /// NAME.
        name: Name,
    },
    /// `version N`.
    Version(u32),
    /// A line that is not a valid request (no LF inside; an LF is added).
    Garbage(Vec<u8>),
    /// `prefix` followed by `fill` octets `x` and LF (or CR LF): over-long lines (501) and
    /// lines just within the limit.
    Long {
        /// What the line starts with.
        prefix: &'static str,
        /// How many `x` follow.
        fill: usize,
        /// End with CR LF.
        crlf: bool,
    },
    /// `close` (then `bye` and the end of the connection).
    Close,
    /// The client closes its side without `close` (EOF).
    Drop,
    /// Requests sent in one write, before reading any reply (PIPE-2); only requests without
    /// `wait` flow.
    Batch(Vec<Op>),
    /// An op on a second connection (a session of its own), while this one stays open.
    Side(Box<Op>),
    /// A put (ending `end`) whose payload is sent in two halves, with `side` run on a second
    /// connection in between: an upload in progress is invisible (PUT-10), and a `new` put
    /// whose name was taken meanwhile fails at the commit with 512 (PUT-13).
    Interleaved {
        /// The put.
        put: Box<Op>,
        /// What another session does meanwhile.
        side: Box<Op>,
    },
    /// The op with its well-formed lines (requests, chunk heads, trailers) ended by CR LF.
    Crlf(Box<Op>),
    /// The op with the start of every write sent in small pieces, a millisecond apart
    /// (FRAME-1: message boundaries come from the octets, not from the reads).
    Trickle(Box<Op>),
    /// A batch after which the client closes its sending side (EOF) and keeps reading: the
    /// server still answers every complete request, in order (CLOSE-4, CLOSE-5), and closes.
    BatchEof(Vec<Op>),
}

impl Op {
    /// The octets of the request line(s) and payload(s) this op sends with the connection
    /// kept (for a `wait` put: only the line).
    fn line(&self) -> Vec<u8> {
        match self {
            Op::Dir => format!("dir{}", eol()).into_bytes(),
            Op::Close => format!("close{}", eol()).into_bytes(),
            Op::Get { offset, name } => [
                format!("get {offset} ").as_bytes(),
                &name.0,
                eol().as_bytes(),
            ]
            .concat(),
            Op::Put {
                mode,
                flow,
                name,
                content,
                ..
            } => put_line(content.size(), *mode, *flow, name),
            Op::PutHuge { size, flow, name } => put_line(*size, PutMode::New, *flow, name),
            Op::Version(n) => format!("version {n}{}", eol()).into_bytes(),
            Op::Garbage(g) => [&g[..], b"\n"].concat(),
            Op::Long { prefix, fill, crlf } => {
                let mut v = prefix.as_bytes().to_vec();
                v.resize(v.len() + fill, b'x');
                if *crlf {
                    v.push(b'\r');
                }
                v.push(b'\n');
                v
            }
            Op::Drop | Op::Side(_) => Vec::new(),
            Op::Interleaved { put, .. } => put.line(),
            Op::Trickle(op) | Op::Crlf(op) => op.line(),
            Op::Batch(ops) | Op::BatchEof(ops) => {
                ops.iter().flat_map(Op::line_and_payload).collect()
            }
        }
    }

    /// The request line and, for a `now` put, its payload.
    fn line_and_payload(&self) -> Vec<u8> {
        let mut out = self.line();
        if let Op::Put {
            flow: PutFlow::Now,
            content,
            chunk,
            ending,
            ..
        } = self
        {
            out.extend_from_slice(&payload(content, *chunk, *ending));
        }
        out
    }

    /// How many requests this op sends.
    pub fn requests(&self) -> usize {
        match self {
            Op::Drop | Op::Side(_) => 0,
            Op::Trickle(op) | Op::Crlf(op) => op.requests(),
            Op::Batch(ops) | Op::BatchEof(ops) => ops.len(),
            _ => 1,
        }
    }

    /// What the executor does for this op.
    pub fn plan(&self) -> Vec<Step> {
        match self {
            Op::Drop => vec![Step::Drop],
            Op::Side(op) => vec![Step::Side(op.clone())],
            Op::Trickle(op) => op.plan(),
            Op::Crlf(op) => {
                let before = CRLF.with(|c| c.replace(true));
                let plan = op.plan();
                CRLF.with(|c| c.set(before));
                plan
            }
            Op::Interleaved { put, side } => {
                let Op::Put {
                    flow,
                    content,
                    chunk,
                    ending,
                    ..
                } = &**put
                else {
                    return put.plan();
                };
                let octets = payload(content, *chunk, *ending);
                let (first, rest) = octets.split_at(octets.len() / 2);
                let then = vec![
                    Step::Send(first.to_vec()),
                    Step::Side(side.clone()),
                    Step::Exchange {
                        send: rest.to_vec(),
                        finals: 1,
                        half_close: false,
                    },
                ];
                match flow {
                    PutFlow::Wait => vec![Step::PutWait {
                        line: put.line(),
                        then,
                    }],
                    PutFlow::Now => {
                        let mut plan = vec![Step::Send(put.line())];
                        plan.extend(then);
                        plan
                    }
                }
            }
            Op::Put {
                flow: PutFlow::Wait,
                content,
                chunk,
                ending,
                ..
            } => {
                let octets = payload(content, *chunk, *ending);
                let then = match ending {
                    Ending::Disconnect { .. } => Step::SendAndDrop(octets),
                    _ => Step::Exchange {
                        send: octets,
                        finals: 1,
                        half_close: false,
                    },
                };
                let mut plan = vec![Step::PutWait {
                    line: self.line(),
                    then: vec![then],
                }];
                if matches!(ending, Ending::Disconnect { .. }) {
                    plan.push(Step::Drop);
                }
                plan
            }
            Op::PutHuge {
                flow: PutFlow::Wait,
                ..
            } => vec![Step::PutWait {
                line: self.line(),
                // A server that says `go` to 1 TiB gets no payload: the test fails on the go.
                then: vec![Step::Drop],
            }],
            Op::Put {
                flow: PutFlow::Now,
                ending: Ending::Disconnect { .. },
                ..
            } => vec![Step::SendAndDrop(self.line_and_payload())],
            _ => vec![Step::Exchange {
                send: self.line_and_payload(),
                finals: self.requests(),
                half_close: matches!(self, Op::BatchEof(_)),
            }],
        }
    }
}

fn put_line(size: u64, mode: PutMode, flow: PutFlow, name: &Name) -> Vec<u8> {
    let (mode, flow) = (mode.as_str(), flow.as_str());
    [
        format!("put {size} {mode} {flow} ").as_bytes(),
        &name.0,
        eol().as_bytes(),
    ]
    .concat()
}

/// The chunk size actually used: at least 1/256 of the file, so that tiny chunks stay cheap.
pub fn effective_chunk(content: &Content, chunk: usize) -> usize {
    chunk.max(content.len / 256).clamp(1, MAX_CHUNK)
}

fn chunks(data: &[u8], chunk: usize, out: &mut Vec<u8>) {
    for piece in data.chunks(chunk) {
        out.extend_from_slice(format!("data {}{}", piece.len(), eol()).as_bytes());
        out.extend_from_slice(piece);
    }
}

fn end_line(d: Digest) -> Vec<u8> {
    format!("end {d}{}", eol()).into_bytes()
}

/// The payload octets of a put.
pub fn payload(content: &Content, chunk: usize, ending: Ending) -> Vec<u8> {
    let data = content.bytes();
    let chunk = effective_chunk(content, chunk);
    let mut out = Vec::with_capacity(data.len() + 64 + data.len() / chunk * 16);
    match ending {
        Ending::End => {
            chunks(&data, chunk, &mut out);
            out.extend_from_slice(&end_line(Digest::of(&data)));
        }
        Ending::Corrupt => {
            chunks(&data, chunk, &mut out);
            let wrong = Digest::of(&[&data[..], b"!"].concat());
            out.extend_from_slice(&end_line(wrong));
        }
        Ending::Abort => {
            chunks(&data[..data.len() / 2], chunk, &mut out);
            out.extend_from_slice(format!("abort 431 local read error{}", eol()).as_bytes());
        }
        Ending::Disconnect { keep } => {
            chunks(&data, chunk, &mut out);
            out.extend_from_slice(&end_line(Digest::of(&data)));
            let keep = (out.len() * usize::from(keep) / 1000).min(out.len() - 1);
            out.truncate(keep);
        }
        Ending::Framing(f) => match f {
            Framing::ZeroChunk => out.extend_from_slice(b"data 0\n"),
            Framing::TooBig => out.extend_from_slice(b"data 1048577\n"),
            Framing::LeadingZero => out.extend_from_slice(b"data 01\nx"),
            Framing::Overrun => {
                out.extend_from_slice(format!("data {}\n", data.len() + 1).as_bytes());
                out.extend_from_slice(&data);
                out.push(b'!');
            }
            Framing::EarlyEnd if data.is_empty() => out.extend_from_slice(b"data 1\n!"),
            Framing::EarlyEnd => {
                chunks(&data[..data.len() - 1], chunk, &mut out);
                out.extend_from_slice(&end_line(Digest::of(&data)));
            }
            Framing::BadDigest => {
                chunks(&data, chunk, &mut out);
                let d = Digest::of(&data)
                    .to_string()
                    .to_uppercase()
                    .replace("XXH3-128", "xxh3-128");
                let d = if d == Digest::of(&data).to_string() {
                    "xxh3-128:ZZ".to_owned()
                } else {
                    d
                };
                out.extend_from_slice(format!("end {d}\n").as_bytes());
            }
            Framing::Junk => {
                chunks(&data[..data.len() / 2], chunk, &mut out);
                out.extend_from_slice(b"hello\n");
            }
            Framing::LongLine => {
                chunks(&data[..data.len() / 2], chunk, &mut out);
                out.resize(out.len() + 5000, b'x');
                out.push(b'\n');
            }
            Framing::EmptyLine => {
                chunks(&data[..data.len() / 2], chunk, &mut out);
                out.push(b'\n');
            }
        },
    }
    out
}

fn describe_payload(content: &Content, chunk: usize, ending: Ending) -> String {
    let chunk = effective_chunk(content, chunk);
    let how = match ending {
        Ending::End => "end".to_owned(),
        Ending::Corrupt => "end with a wrong digest".to_owned(),
        Ending::Abort => format!("abort 431 after {} octets", content.len / 2),
        Ending::Disconnect { keep } => format!("client closes after {keep}‰ of the payload"),
        Ending::Framing(f) => format!("framing violation {f:?}"),
    };
    format!("⟪{content:?}, chunks ≤ {chunk}, {how}⟫")
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |f: &mut fmt::Formatter<'_>| {
            let l = self.line();
            f.write_str(&escape(&l[..l.len() - 1]))
        };
        match self {
            Op::Put {
                content,
                chunk,
                ending,
                ..
            } => {
                line(f)?;
                write!(f, " {}", describe_payload(content, *chunk, *ending))
            }
            Op::Long { prefix, fill, crlf } => write!(
                f,
                "{}⟪{fill} × x⟫{}",
                escape(prefix.as_bytes()),
                if *crlf { "\\r" } else { "" }
            ),
            Op::Drop => f.write_str("⟪client closes the connection⟫"),
            Op::Side(op) => write!(f, "⟪on a second connection:⟫ {op:?}"),
            Op::Trickle(op) => write!(f, "⟪in small pieces:⟫ {op:?}"),
            Op::Crlf(op) => write!(f, "⟪lines end with CR LF:⟫ {op:?}"),
            Op::Interleaved { put, side } => write!(
                f,
                "{put:?}\n        ⟪after half the payload, on a second connection:⟫ {side:?}"
            ),
            Op::Batch(ops) | Op::BatchEof(ops) => {
                f.write_str("⟪pipelined:⟫")?;
                for op in ops {
                    write!(f, "\n        {op:?}")?;
                }
                if matches!(self, Op::BatchEof(_)) {
                    f.write_str("\n        ⟪client closes its sending side⟫")?;
                }
                Ok(())
            }
            _ => line(f),
        }
    }
}

/// The server options a session runs with (the `@server` options of section 14).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// `read-only`: every put is refused with 514 (SEC-10).
    pub read_only: bool,
    /// `max-size`.
    pub max_size: u64,
    /// `max-eager` (0 disables flow `now`).
    pub max_eager: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            read_only: false,
            max_size: 1 << 40,
            max_eager: 1 << 20,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Self::default();
        if self.read_only {
            f.write_str(" read-only")?;
        }
        if self.max_size != d.max_size {
            write!(f, " max-size={}", self.max_size)?;
        }
        if self.max_eager != d.max_eager {
            write!(f, " max-eager={}", self.max_eager)?;
        }
        Ok(())
    }
}

/// Mostly the defaults; otherwise read-only, or small `max-size` / `max-eager` (0 included).
pub fn server_config() -> impl Strategy<Value = ServerConfig> {
    prop_oneof![
        6 => Just(ServerConfig::default()),
        1 => (
            proptest::bool::weighted(0.3),
            prop_oneof![Just(1u64 << 40), Just(0u64), Just(100u64), Just(70_000u64)],
            prop_oneof![Just(1u64 << 20), Just(0u64), Just(1u64), Just(4096u64)],
        )
            .prop_map(|(read_only, max_size, max_eager)| ServerConfig {
                read_only,
                max_size,
                max_eager,
            }),
    ]
}

/// A session: fixture files in the served folder, then the ops on one or more connections.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The server's options.
    pub config: ServerConfig,
    /// Files present before the session (valid names), with mtime
    /// [`crate::FIXTURE_MTIME`].
    pub fixtures: Vec<(Vec<u8>, Content)>,
    /// The ops.
    pub ops: Vec<Op>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Session:")?;
        if self.config != ServerConfig::default() {
            writeln!(f, "  @server{:?}", self.config)?;
        }
        for (name, c) in &self.fixtures {
            writeln!(f, "  @file {} ⟪{c:?}⟫", escape(name))?;
        }
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:>3}  C: {op:?}")?;
        }
        Ok(())
    }
}

fn mode() -> impl Strategy<Value = PutMode> {
    prop_oneof![Just(PutMode::New), Just(PutMode::Replace)]
}

fn chunk() -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(MAX_CHUNK), 1 => 1usize..=4096, 1 => 4097usize..MAX_CHUNK]
}

fn framing() -> impl Strategy<Value = Framing> {
    proptest::sample::select(
        &[
            Framing::ZeroChunk,
            Framing::TooBig,
            Framing::LeadingZero,
            Framing::Overrun,
            Framing::EarlyEnd,
            Framing::BadDigest,
            Framing::Junk,
            Framing::LongLine,
            Framing::EmptyLine,
        ][..],
    )
}

fn ending(framing_weight: u32) -> impl Strategy<Value = Ending> {
    prop_oneof![
        16 => Just(Ending::End),
        2 => Just(Ending::Corrupt),
        2 => Just(Ending::Abort),
        2 => (0u16..1000).prop_map(|keep| Ending::Disconnect { keep }),
        framing_weight => framing().prop_map(Ending::Framing),
    ]
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => Just(0u64),
        3 => 1u64..=64,
        2 => 65u64..=70_000,
        1 => 70_001u64..=(5 << 20),
        1 => prop_oneof![Just(u64::MAX), Just(1u64 << 40)],
    ]
}

/// A put with any content.
pub fn put(framing_weight: u32) -> impl Strategy<Value = Op> {
    (
        mode(),
        prop_oneof![Just(PutFlow::Wait), Just(PutFlow::Now)],
        name(),
        content(),
        chunk(),
        ending(framing_weight),
    )
        .prop_map(|(mode, flow, name, content, chunk, ending)| Op::Put {
            mode,
            flow,
            name,
            content,
            chunk,
            ending,
        })
}

/// A line that the oracle classifies as an error needing no payload (500, 501, 502, 510).
pub fn garbage() -> impl Strategy<Value = Op> {
    const PREFIXES: &[&str] = &[
        "",
        "",
        "dir",
        "get ",
        "get 0 ",
        "put ",
        "put 5 new now ",
        "put 3 replace wait ",
        "version ",
        "close",
        "data ",
        "end ",
        "abort ",
        "DIR",
        "Get 0 ",
        "PUT ",
        "ok ",
    ];
    const PIECES: &[&[u8]] = &[
        b" ",
        b"  ",
        b"\t",
        b"\r",
        b"\x00",
        b"\xff",
        b"\xc3",
        "é".as_bytes(),
        "天".as_bytes(),
        b"0",
        b"1",
        b"00",
        b"01",
        b"-1",
        b"+1",
        b"18446744073709551615",
        b"18446744073709551616",
        b"99999",
        b"100000",
        b"new",
        b"replace",
        b"wait",
        b"now",
        b"later",
        b"x",
        b"a/b",
        b".x",
        b"dir",
        b"get",
        b"put",
        b"version",
        b"close",
    ];
    (
        proptest::sample::select(PREFIXES),
        proptest::collection::vec(proptest::sample::select(PIECES), 0..6),
    )
        .prop_map(|(p, pieces)| [p.as_bytes().to_vec(), pieces.concat()].concat())
        .prop_filter("an error line without payload", |line| {
            matches!(oracle::classify_line(strip_cr(line)), Class::Err(_))
        })
        .prop_map(Op::Garbage)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Lines around the 4096-octet limit (FRAME-2).
pub fn long_line() -> impl Strategy<Value = Op> {
    (
        proptest::sample::select(&["", "get 0 ", "dir", "put 1 new wait "][..]),
        4085usize..4100,
        any::<bool>(),
    )
        .prop_map(|(prefix, total, crlf)| Op::Long {
            prefix,
            fill: total - prefix.len(),
            crlf,
        })
}

fn version() -> impl Strategy<Value = Op> {
    prop_oneof![3 => Just(1u32), 2 => Just(2u32), 1 => Just(99_999u32)].prop_map(Op::Version)
}

fn get() -> impl Strategy<Value = Op> {
    (offset(), prop_oneof![3 => hot_name(), 2 => name()])
        .prop_map(|(offset, name)| Op::Get { offset, name })
}

fn put_huge() -> impl Strategy<Value = Op> {
    (
        prop_oneof![Just(u64::MAX), (1u64 << 40) + 1..=1u64 << 50],
        prop_oneof![3 => Just(PutFlow::Wait), 1 => Just(PutFlow::Now)],
        name(),
    )
        .prop_map(|(size, flow, name)| Op::PutHuge { size, flow, name })
}

/// A request that may be pipelined: no `wait` put, no disconnect.
fn pipelinable() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Dir),
        4 => get(),
        6 => (mode(), name(), small_content(), chunk(), prop_oneof![
            12 => Just(Ending::End),
            2 => Just(Ending::Corrupt),
            2 => Just(Ending::Abort),
            1 => framing().prop_map(Ending::Framing),
        ])
            .prop_map(|(mode, name, content, chunk, ending)| Op::Put {
                mode,
                flow: PutFlow::Now,
                name,
                content,
                chunk,
                ending,
            }),
        1 => version(),
        2 => garbage(),
        1 => Just(Op::Close),
    ]
}

/// What a second session does: list, get, or put a small file (eager, so it commits
/// within its op).
fn side_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Dir),
        1 => (offset(), hot_name()).prop_map(|(offset, name)| Op::Get { offset, name }),
        2 => (mode(), hot_name(), small_content()).prop_map(|(mode, name, content)| Op::Put {
            mode,
            flow: PutFlow::Now,
            name,
            content,
            chunk: MAX_CHUNK,
            ending: Ending::End,
        }),
    ]
}

/// A put whose payload is interrupted by another session's op.
fn interleaved() -> impl Strategy<Value = Op> {
    (
        mode(),
        prop_oneof![Just(PutFlow::Wait), Just(PutFlow::Now)],
        hot_name(),
        small_content(),
        chunk(),
        side_op(),
    )
        .prop_map(|(mode, flow, name, content, chunk, side)| Op::Interleaved {
            put: Box::new(Op::Put {
                mode,
                flow,
                name,
                content,
                chunk,
                ending: Ending::End,
            }),
            side: Box::new(side),
        })
}

/// Any op; `framing_weight` sets how often a put breaks its framing.
pub fn op(framing_weight: u32) -> impl Strategy<Value = Op> {
    let base = prop_oneof![
        3 => Just(Op::Dir),
        5 => get(),
        8 => put(framing_weight),
        1 => put_huge(),
        1 => version(),
        2 => garbage(),
        1 => long_line(),
        1 => Just(Op::Close),
        1 => Just(Op::Drop),
        2 => proptest::collection::vec(pipelinable(), 2..7).prop_map(Op::Batch),
        1 => proptest::collection::vec(pipelinable(), 1..5).prop_map(Op::BatchEof),
        1 => side_op().prop_map(|op| Op::Side(Box::new(op))),
        2 => interleaved(),
    ]
    .boxed();
    prop_oneof![
        8 => base.clone(),
        1 => base.clone().prop_map(|op| match op {
            Op::Drop | Op::Side(_) => op,
            op => Op::Trickle(Box::new(op)),
        }),
        1 => base.prop_map(|op| match op {
            Op::Drop | Op::Side(_) => op,
            op => Op::Crlf(Box::new(op)),
        }),
    ]
}

/// Fixture files.
pub fn fixtures() -> impl Strategy<Value = Vec<(Vec<u8>, Content)>> {
    let name = prop_oneof![3 => hot_name(), 1 => valid_name()].prop_map(|n| n.0);
    let content = prop_oneof![
        4 => small_content(),
        1 => ((1usize << 20) + 1..=3 << 20, 0u64..1000).prop_map(|(l, s)| Content::new(l, s)),
    ];
    proptest::collection::vec((name, content), 0..6)
}

/// A random session of up to `max_ops` ops.
pub fn session(max_ops: usize, framing_weight: u32) -> impl Strategy<Value = Session> {
    (
        server_config(),
        fixtures(),
        proptest::collection::vec(op(framing_weight), 1..=max_ops),
    )
        .prop_map(|(config, fixtures, ops)| Session {
            config,
            fixtures,
            ops,
        })
}

/// A malformed item: a garbage line, a line around the length limit, a bad name, a bad
/// number or keyword in a put, a put whose payload breaks its framing (after a refusal or
/// not), or a pipelined batch holding one of them.
pub fn malformed() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => garbage(),
        2 => long_line(),
        2 => (offset(), proptest::sample::select(INVALID_NAMES))
            .prop_map(|(offset, n)| Op::Get { offset, name: Name(n.to_vec()) }),
        4 => (mode(), prop_oneof![Just(PutFlow::Wait), Just(PutFlow::Now)], name(),
              small_content(), chunk(), framing())
            .prop_map(|(mode, flow, name, content, chunk, f)| Op::Put {
                mode, flow, name, content, chunk, ending: Ending::Framing(f),
            }),
        2 => (mode(), proptest::sample::select(INVALID_NAMES), small_content(), chunk())
            .prop_map(|(mode, n, content, chunk)| Op::Put {
                mode, flow: PutFlow::Now, name: Name(n.to_vec()), content, chunk,
                ending: Ending::End,
            }),
        1 => put_huge(),
        2 => (proptest::collection::vec(pipelinable(), 0..3), garbage(),
              proptest::collection::vec(pipelinable(), 0..3))
            .prop_map(|(a, g, b)| Op::Batch([a, vec![g], b].concat())),
    ]
}

/// A session for the malformed-input tests: a few valid ops, one malformed item, then `dir`
/// (is the connection still usable?) and `close`.
pub fn malformed_session() -> impl Strategy<Value = Session> {
    (
        server_config(),
        fixtures(),
        proptest::collection::vec(pipelinable(), 0..3),
        malformed(),
    )
        .prop_map(|(config, fixtures, mut ops, bad)| {
            ops.push(bad);
            ops.push(Op::Dir);
            ops.push(Op::Close);
            Session {
                config,
                fixtures,
                ops,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(op: &Op) -> Vec<u8> {
        op.plan()
            .into_iter()
            .map(|s| match s {
                Step::Exchange { send, .. } => send,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .concat()
    }

    #[test]
    fn crlf_ends_well_formed_lines_only() {
        let put = Op::Put {
            mode: PutMode::New,
            flow: PutFlow::Now,
            name: Name::new("a"),
            content: Content::new(3, 0),
            chunk: MAX_CHUNK,
            ending: Ending::End,
        };
        let octets = sent(&Op::Crlf(Box::new(Op::Batch(vec![Op::Dir, put.clone()]))));
        let want = format!(
            "dir\r\nput 3 new now a\r\ndata 3\r\n\x00\x01\x02end {}\r\n",
            Digest::of(&[0, 1, 2])
        );
        assert_eq!(octets, want.as_bytes());
        assert_eq!(sent(&put), want.replace("\r\n", "\n").as_bytes()[4..]);
        assert_eq!(
            format!("{:?}", Op::Crlf(Box::new(put))),
            "⟪lines end with CR LF:⟫ put 3 new now a ⟪3 octets #0, chunks ≤ 1048576, end⟫"
        );
    }

    #[test]
    fn debug_is_the_wire_line() {
        let op = Op::Get {
            offset: 7,
            name: Name(b"trail ".to_vec()),
        };
        assert_eq!(format!("{op:?}"), "get 7 trail\\x20");
        let op = Op::Put {
            mode: PutMode::Replace,
            flow: PutFlow::Wait,
            name: Name::new("天线15.doc"),
            content: Content::new(5, 9),
            chunk: MAX_CHUNK,
            ending: Ending::Disconnect { keep: 500 },
        };
        assert_eq!(
            format!("{op:?}"),
            "put 5 replace wait 天线15.doc ⟪5 octets #9, chunks ≤ 1048576, client closes after 500‰ of the payload⟫"
        );
    }
}
