//! The typed messages of ferry/1 and their encoding. Every value that can be built
//! encodes to octets that [`crate::decode`] accepts and maps back to the same value.

use std::io::Write as _;

use crate::code::Code;
use crate::digest::Digest;
use crate::limits::{
    DEFAULT_IDLE_SECS, DEFAULT_MAX_EAGER, DEFAULT_MAX_SIZE, DEFAULT_STALL_SECS, MAX_CHUNK,
    MAX_LINE, MAX_NAME,
};
use crate::name::{FileName, NameError};
use crate::text::{ExtName, ParamName, ParamValue, Text, TokenError, Version};
use crate::time::Timestamp;

/// `put-mode`: what happens when the name already exists (PUT-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutMode {
    /// `new`: create only; an existing name gives `512 exists`.
    New,
    /// `replace`: atomically replace an existing file.
    Replace,
}

/// `put-flow`: whether the client waits for `go` before sending the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutFlow {
    /// `wait`: the server answers `go` or an error before any payload octet (PUT-5).
    Wait,
    /// `now`: the payload follows the request line at once; size ≤ max-eager (PUT-6).
    Now,
}

impl PutMode {
    /// Its keyword on the wire (`put-mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            PutMode::New => "new",
            PutMode::Replace => "replace",
        }
    }
}

impl PutFlow {
    /// Its keyword on the wire (`put-flow`).
    pub fn as_str(self) -> &'static str {
        match self {
            PutFlow::Wait => "wait",
            PutFlow::Now => "now",
        }
    }
}

/// A client request (`request` rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// `dir`: list the served folder.
    Dir,
    /// `get OFFSET NAME`: download octets `offset..` of a file.
    Get {
        /// First octet to send (0 for a whole file).
        offset: u64,
        /// The file.
        name: FileName,
    },
    /// `put SIZE MODE FLOW NAME`: upload a file of `size` octets.
    Put {
        /// Exact length of the file.
        size: u64,
        /// Create-only or replace.
        mode: PutMode,
        /// Wait for `go`, or send at once.
        flow: PutFlow,
        /// The file.
        name: FileName,
    },
    /// `version N`: switch to another protocol version the server listed.
    Version(Version),
    /// `close`: end the session.
    Close,
}

/// A server reply (`reply` rule). The lines that follow some replies (dir entries, payload
/// chunks) are separate messages: [`Entry`] and [`Frame`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `ok dir COUNT`, followed by `count` [`Entry`] lines.
    DirOk {
        /// How many entry lines follow.
        count: u64,
    },
    /// `ok get SIZE MTIME`, followed by a payload of `size - offset` octets.
    GetOk {
        /// Length of the whole file.
        size: u64,
        /// Its modification time.
        mtime: Timestamp,
    },
    /// `go`: send the payload of the waiting put.
    Go,
    /// `ok put SIZE DIGEST`: the upload is verified, durable and visible.
    PutOk {
        /// Length of the stored file.
        size: u64,
        /// Its digest.
        digest: Digest,
    },
    /// `ok version N`: the session now speaks version N.
    VersionOk(Version),
    /// `bye`: answer to close; the server closes the connection next.
    Bye,
    /// `err CODE [TEXT]`.
    Err(ErrorReply),
}

/// `err CODE [TEXT]`, also the content of an `abort` trailer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorReply {
    /// The code; its first digit tells whether retrying can help.
    pub code: Code,
    /// Human-readable text, never parsed (ERR-4).
    pub text: Option<Text>,
}

impl ErrorReply {
    /// An error with text made valid by [`Text::lossy`].
    pub fn new(code: Code, text: &str) -> Self {
        Self {
            code,
            text: Text::lossy(text),
        }
    }
}

/// One line of a dir listing (`entry` rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Length in octets.
    pub size: u64,
    /// Modification time, UTC.
    pub mtime: Timestamp,
    /// The file name.
    pub name: FileName,
}

/// A listing line whose `size` and `mtime` are valid but whose name field is not a name
/// the receiver accepts (NAME-9): a client skips the entry and goes on with the listing
/// (NAME-14), and may tell the user about it (NAME-15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkippedEntry {
    /// Length in octets, as listed.
    pub size: u64,
    /// Modification time, as listed.
    pub mtime: Timestamp,
    /// The name field's octets as received (possibly not UTF-8): show them escaped.
    pub name: Vec<u8>,
    /// The rule the name breaks.
    pub error: NameError,
}

/// One line of a listing as a client reads it ([`crate::decode_listed`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Listed {
    /// A valid entry.
    Entry(Entry),
    /// An entry to skip (NAME-14).
    Skipped(SkippedEntry),
}

impl Listed {
    /// The name field's octets, valid or not: what DIR-4's order is checked on.
    pub fn name_octets(&self) -> &[u8] {
        match self {
            Listed::Entry(e) => e.name.as_bytes(),
            Listed::Skipped(s) => &s.name,
        }
    }
}

/// A `dir` listing as a client accepted it: the valid entries, and the entries it skipped
/// because it cannot accept their names (NAME-14), both in listing order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Listing {
    /// The entries with valid names, in ascending bytewise order of their names.
    pub entries: Vec<Entry>,
    /// The entries skipped, in listing order.
    pub skipped: Vec<SkippedEntry>,
    last: Option<Vec<u8>>,
}

/// A listing whose names are out of DIR-4's order or repeat one: not a valid listing
/// (DIR-10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the listing is not in bytewise order of names or repeats one")]
pub struct ListingOrderError {
    /// The name listed before.
    pub previous: Vec<u8>,
    /// The name that does not come after it.
    pub next: Vec<u8>,
}

impl Listing {
    /// An empty listing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next line of the listing, checking that its name's octets, valid or not,
    /// come strictly after the previous line's (DIR-4, DIR-10).
    pub fn push(&mut self, line: Listed) -> Result<(), ListingOrderError> {
        if let Some(prev) = &self.last
            && prev.as_slice() >= line.name_octets()
        {
            return Err(ListingOrderError {
                previous: prev.clone(),
                next: line.name_octets().to_vec(),
            });
        }
        self.last = Some(line.name_octets().to_vec());
        match line {
            Listed::Entry(e) => self.entries.push(e),
            Listed::Skipped(s) => self.skipped.push(s),
        }
        Ok(())
    }
}

/// A payload message (`chunk-head`, `end`, `abort`), in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// `data LEN`: exactly `len` raw octets follow this line.
    Data(ChunkLen),
    /// `end DIGEST`: the transfer is complete; the digest covers the whole file.
    End(Digest),
    /// `abort CODE [TEXT]`: the sender gave up; discard the transfer.
    Abort(ErrorReply),
}

/// A chunk length, 1 ..= [`MAX_CHUNK`] (DATA-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkLen(u32);

impl ChunkLen {
    /// The largest chunk.
    pub const MAX: Self = Self(MAX_CHUNK);

    /// Validates `len`.
    pub const fn new(len: u64) -> Option<Self> {
        if len == 0 || len > MAX_CHUNK as u64 {
            None
        } else {
            Some(Self(len as u32))
        }
    }

    /// The length.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The length as `usize`.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

/// The limits a server announces in its greeting (HELLO-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// `max-line`: longest line, eol included (4096 in ferry/1).
    pub max_line: u64,
    /// `max-name`: longest name in octets (255 in ferry/1).
    pub max_name: u64,
    /// `max-size`: largest file the server accepts with put.
    pub max_size: u64,
    /// `max-chunk`: largest chunk (1048576 in ferry/1).
    pub max_chunk: u64,
    /// `max-eager`: largest size of a `now` put; 0 disables eager puts.
    pub max_eager: u64,
    /// `idle`: idle timeout, seconds.
    pub idle: u64,
    /// `stall`: stall timeout, seconds.
    pub stall: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE as u64,
            max_name: MAX_NAME as u64,
            max_size: DEFAULT_MAX_SIZE,
            max_chunk: u64::from(MAX_CHUNK),
            max_eager: DEFAULT_MAX_EAGER,
            idle: DEFAULT_IDLE_SECS,
            stall: DEFAULT_STALL_SECS,
        }
    }
}

/// Names of the seven limit params, in the order a new greeting sends them.
pub(crate) const LIMIT_PARAMS: [&str; 7] = [
    "max-line",
    "max-name",
    "max-size",
    "max-chunk",
    "max-eager",
    "idle",
    "stall",
];

/// Where a param of the greeting line stands, so that a decoded greeting encodes back to the
/// same octets whatever order the server chose (params may come in any order, HELLO-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ParamSlot {
    /// `LIMIT_PARAMS[i]`.
    Limit(usize),
    /// The `ext` param.
    Ext,
    /// The `min-rate` param.
    MinRate,
    /// `other[i]`.
    Other(usize),
}

/// The server's first line when it accepts the session (`greeting` rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Greeting {
    versions: Vec<Version>,
    limits: Limits,
    min_rate: Option<u64>,
    extensions: Vec<ExtName>,
    other: Vec<(ParamName, ParamValue)>,
    order: Vec<ParamSlot>,
}

impl Greeting {
    /// A ferry/1 greeting announcing `limits`, no extensions.
    pub fn new(limits: Limits) -> Self {
        Self {
            versions: vec![Version::V1],
            limits,
            min_rate: None,
            extensions: Vec::new(),
            other: Vec::new(),
            order: (0..LIMIT_PARAMS.len()).map(ParamSlot::Limit).collect(),
        }
    }

    /// Sets the versions the server speaks (the list is never empty).
    pub fn with_versions(mut self, first: Version, rest: &[Version]) -> Self {
        self.versions = std::iter::once(first).chain(rest.iter().copied()).collect();
        self
    }

    /// Adds an extension to the `ext` param (names are distinct, EXT-1).
    pub fn with_extension(mut self, ext: ExtName) -> Result<Self, TokenError> {
        if self.extensions.contains(&ext) {
            return Err(TokenError::Duplicate);
        }
        self.extensions.push(ext);
        if !self.order.contains(&ParamSlot::Ext) {
            self.order.push(ParamSlot::Ext);
        }
        self.check_len()
    }

    /// Announces `min-rate=RATE` (TIME-9): a payload that moves slower than `rate` octets per
    /// second on average, beyond a grace of the stall timeout, times the session out. `None`
    /// leaves the param out (no minimum; so does a rate of 0 when announced).
    pub fn with_min_rate(mut self, rate: Option<u64>) -> Self {
        match (rate, self.min_rate.is_some()) {
            (Some(_), false) => self.order.push(ParamSlot::MinRate),
            (None, true) => self.order.retain(|s| *s != ParamSlot::MinRate),
            _ => {}
        }
        self.min_rate = rate;
        self
    }

    /// Adds a param that ferry/1 does not define (each name at most once, HELLO-3).
    pub fn with_param(mut self, name: ParamName, value: ParamValue) -> Result<Self, TokenError> {
        if self.other.iter().any(|(n, _)| *n == name) {
            return Err(TokenError::Duplicate);
        }
        self.order.push(ParamSlot::Other(self.other.len()));
        self.other.push((name, value));
        self.check_len()
    }

    fn check_len(self) -> Result<Self, TokenError> {
        if self.to_bytes().len() > MAX_LINE {
            Err(TokenError::TooLong(MAX_LINE))
        } else {
            Ok(self)
        }
    }

    pub(crate) fn from_parts(
        versions: Vec<Version>,
        limits: Limits,
        min_rate: Option<u64>,
        extensions: Vec<ExtName>,
        other: Vec<(ParamName, ParamValue)>,
        order: Vec<ParamSlot>,
    ) -> Self {
        Self {
            versions,
            limits,
            min_rate,
            extensions,
            other,
            order,
        }
    }

    /// The checks of HELLO-4, HELLO-5 and HELLO-7 that the grammar cannot make: no version
    /// listed twice, the values ferry/1 fixes (`max-line=4096`, `max-name=255`,
    /// `max-chunk=1048576`), and `idle`/`stall` of at least 1. A client closes the connection
    /// when this fails (HELLO-9); whether version 1 is listed is [`Greeting::supports`]
    /// (HELLO-10).
    pub fn check(&self) -> Result<(), GreetingError> {
        for (i, v) in self.versions.iter().enumerate() {
            if self.versions[..i].contains(v) {
                return Err(GreetingError::DuplicateVersion(*v));
            }
        }
        let l = &self.limits;
        for (param, got, want) in [
            ("max-line", l.max_line, MAX_LINE as u64),
            ("max-name", l.max_name, MAX_NAME as u64),
            ("max-chunk", l.max_chunk, u64::from(MAX_CHUNK)),
        ] {
            if got != want {
                return Err(GreetingError::FixedValue { param, got, want });
            }
        }
        if l.idle == 0 || l.stall == 0 {
            return Err(GreetingError::ZeroTimeout);
        }
        Ok(())
    }

    /// The versions the server speaks, in the order it listed them.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Whether the server speaks `v`.
    pub fn supports(&self, v: Version) -> bool {
        self.versions.contains(&v)
    }

    /// The announced limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The announced `min-rate` in octets per second, when the greeting has one (TIME-9);
    /// `Some(0)` and `None` both mean no minimum.
    pub fn min_rate(&self) -> Option<u64> {
        self.min_rate
    }

    /// The extensions the server offers.
    pub fn extensions(&self) -> &[ExtName] {
        &self.extensions
    }

    /// Params ferry/1 does not define, in the order received.
    pub fn other_params(&self) -> &[(ParamName, ParamValue)] {
        &self.other
    }

    /// Encodes the greeting line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ferry/");
        for (i, v) in self.versions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_num(out, u64::from(v.get()));
        }
        let l = &self.limits;
        let limits = [
            l.max_line,
            l.max_name,
            l.max_size,
            l.max_chunk,
            l.max_eager,
            l.idle,
            l.stall,
        ];
        for slot in &self.order {
            match *slot {
                ParamSlot::Limit(i) => {
                    let _ = write!(out, " {}={}", LIMIT_PARAMS[i], limits[i]);
                }
                ParamSlot::MinRate => {
                    let _ = write!(out, " min-rate={}", self.min_rate.unwrap_or(0));
                }
                ParamSlot::Ext => {
                    out.extend_from_slice(b" ext=");
                    for (i, e) in self.extensions.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(e.as_str().as_bytes());
                    }
                }
                ParamSlot::Other(i) => {
                    let (k, v) = &self.other[i];
                    let _ = write!(out, " {k}={}", v.as_str());
                }
            }
        }
        out.push(b'\n');
    }

    /// The greeting line as octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A greeting that parses but breaks a rule of spec section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GreetingError {
    /// A version listed twice (HELLO-4).
    #[error("version {0} listed twice")]
    DuplicateVersion(Version),
    /// A value ferry/1 fixes has another value (HELLO-5).
    #[error("{param}={got}, but ferry/1 fixes {param}={want}")]
    FixedValue {
        /// The param.
        param: &'static str,
        /// What the server announced.
        got: u64,
        /// What ferry/1 requires.
        want: u64,
    },
    /// `idle` or `stall` is 0 (HELLO-7).
    #[error("idle and stall must be at least 1 second")]
    ZeroTimeout,
}

/// The server's first line: a greeting, or a refusal such as `err 420 busy`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hello {
    /// The session is open.
    Greeting(Greeting),
    /// The server refused the session and closes the connection (CONN-3).
    Refused(ErrorReply),
}

fn push_num(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}");
}

fn push_err(out: &mut Vec<u8>, keyword: &[u8], e: &ErrorReply) {
    out.extend_from_slice(keyword);
    let _ = write!(out, " {}", e.code);
    if let Some(t) = &e.text {
        out.push(b' ');
        out.extend_from_slice(t.as_str().as_bytes());
    }
    out.push(b'\n');
}

impl Request {
    /// Appends the request line (canonical form: LF only).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Dir => out.extend_from_slice(b"dir\n"),
            Request::Get { offset, name } => {
                let _ = writeln!(out, "get {offset} {name}");
            }
            Request::Put {
                size,
                mode,
                flow,
                name,
            } => {
                let (mode, flow) = (mode.as_str(), flow.as_str());
                let _ = writeln!(out, "put {size} {mode} {flow} {name}");
            }
            Request::Version(v) => {
                let _ = writeln!(out, "version {v}");
            }
            Request::Close => out.extend_from_slice(b"close\n"),
        }
    }

    /// The request line as octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Reply {
    /// Appends the reply line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::DirOk { count } => {
                let _ = writeln!(out, "ok dir {count}");
            }
            Reply::GetOk { size, mtime } => {
                let _ = writeln!(out, "ok get {size} {mtime}");
            }
            Reply::Go => out.extend_from_slice(b"go\n"),
            Reply::PutOk { size, digest } => {
                let _ = writeln!(out, "ok put {size} {digest}");
            }
            Reply::VersionOk(v) => {
                let _ = writeln!(out, "ok version {v}");
            }
            Reply::Bye => out.extend_from_slice(b"bye\n"),
            Reply::Err(e) => push_err(out, b"err", e),
        }
    }

    /// The reply line as octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Hello {
    /// Appends the first line of the server.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Hello::Greeting(g) => g.encode(out),
            Hello::Refused(e) => push_err(out, b"err", e),
        }
    }

    /// The line as octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Entry {
    /// Appends the entry line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = writeln!(out, "{} {} {}", self.size, self.mtime, self.name);
    }

    /// The entry line as octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Frame {
    /// Appends the frame line (for `Data`, only the `data LEN` line: the caller sends the
    /// chunk octets right after it).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Data(len) => {
                let _ = writeln!(out, "data {}", len.get());
            }
            Frame::End(d) => {
                let _ = writeln!(out, "end {d}");
            }
            Frame::Abort(e) => push_err(out, b"abort", e),
        }
    }

    /// The frame line as octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Splits a payload of `total` octets into chunk lengths of at most [`MAX_CHUNK`], in order:
/// what a sender writes as `data` lines.
pub fn chunk_lengths(total: u64) -> impl Iterator<Item = ChunkLen> {
    let mut left = total;
    std::iter::from_fn(move || {
        let n = left.min(u64::from(MAX_CHUNK));
        left -= n;
        ChunkLen::new(n)
    })
}

/// Encodes a whole payload of `data` — chunks and the `end` trailer — for a file whose full
/// digest is `digest` (for a get from an offset, `data` is the tail and `digest` still covers
/// the whole file). Handy for tests and small transfers; large ones stream chunk by chunk.
pub fn encode_payload(data: &[u8], digest: Digest, out: &mut Vec<u8>) {
    let mut rest = data;
    for len in chunk_lengths(data.len() as u64) {
        Frame::Data(len).encode(out);
        let (chunk, tail) = rest.split_at(len.as_usize());
        out.extend_from_slice(chunk);
        rest = tail;
    }
    Frame::End(digest).encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_covers_every_octet_once() {
        let lens: Vec<u32> = chunk_lengths(0).map(ChunkLen::get).collect();
        assert!(lens.is_empty());
        let lens: Vec<u32> = chunk_lengths(u64::from(MAX_CHUNK) * 2 + 1)
            .map(ChunkLen::get)
            .collect();
        assert_eq!(lens, [MAX_CHUNK, MAX_CHUNK, 1]);
        assert_eq!(ChunkLen::new(0), None);
        assert_eq!(ChunkLen::new(u64::from(MAX_CHUNK) + 1), None);
    }

    #[test]
    fn greeting_checks() {
        assert_eq!(Greeting::new(Limits::default()).check(), Ok(()));
        let twice = Greeting::new(Limits::default()).with_versions(Version::V1, &[Version::V1]);
        assert_eq!(
            twice.check(),
            Err(GreetingError::DuplicateVersion(Version::V1))
        );
        let wrong = Greeting::new(Limits {
            max_line: 100,
            ..Limits::default()
        });
        assert!(matches!(
            wrong.check(),
            Err(GreetingError::FixedValue {
                param: "max-line",
                ..
            })
        ));
        let zero = Greeting::new(Limits {
            stall: 0,
            ..Limits::default()
        });
        assert_eq!(zero.check(), Err(GreetingError::ZeroTimeout));
    }

    #[test]
    fn the_longest_abort_still_fits_a_line() {
        let text = Text::new("x".repeat(crate::limits::MAX_TEXT)).expect("at the limit");
        let abort = Frame::Abort(ErrorReply {
            code: crate::Code::STORAGE,
            text: Some(text),
        });
        let bytes = abort.to_bytes();
        assert_eq!(bytes.len(), MAX_LINE);
        assert_eq!(crate::decode_frame(&bytes), Ok((abort, MAX_LINE)));
    }

    #[test]
    fn greeting_with_too_many_params_is_refused() {
        let mut g = Greeting::new(Limits::default());
        let mut refused = false;
        for i in 0..1000 {
            let name = ParamName::new(format!("x-{i}")).expect("valid");
            let value = ParamValue::new("v".repeat(100)).expect("valid");
            match g.clone().with_param(name, value) {
                Ok(next) => g = next,
                Err(e) => {
                    assert_eq!(e, TokenError::TooLong(MAX_LINE));
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused);
        assert!(g.to_bytes().len() <= MAX_LINE);
    }
}
