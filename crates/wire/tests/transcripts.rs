//! Known-answer tests from the spec: every transcript of `spec/examples/` is replayed
//! through the codec. Each client and server line must decode (except lines marked
//! `# invalid`, which must be rejected), re-encode to the same octets, and the two sides must
//! make sense together: one reply per request in order, payload sizes and digests that match
//! the files, listings that match the folder, and errors with the code the codec assigns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ferry_transcript::{Action, Side, Transcript};
use ferry_wire::{
    Code, DecodeError, Digest, Hasher, Hello, InvalidKind, PayloadReceiver, PutFlow, PutMode,
    Reply, Request, Step, decode_entry, decode_hello, decode_reply, decode_request,
};

fn spec_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec")
}

fn transcripts() -> Vec<Transcript> {
    let all = Transcript::read_dir(&spec_dir().join("examples")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        all.len() >= 20,
        "expected the spec's transcripts, found {}",
        all.len()
    );
    all
}

/// Octets of one side with `# invalid` steps recorded by their start offset.
struct Stream {
    bytes: Vec<u8>,
    invalid_at: BTreeSet<usize>,
    closes: bool,
}

fn stream(t: &Transcript, side: Side) -> Stream {
    let mut s = Stream {
        bytes: Vec::new(),
        invalid_at: BTreeSet::new(),
        closes: false,
    };
    for step in t.steps.iter().filter(|st| st.side == side) {
        if step.invalid {
            s.invalid_at.insert(s.bytes.len());
        }
        match &step.action {
            Action::Line(b) | Action::Raw(b) => s.bytes.extend_from_slice(b),
            Action::Close => s.closes = true,
        }
    }
    s
}

type Decoder<T> = fn(&[u8]) -> Result<(T, usize), DecodeError>;

struct Cursor<'a> {
    name: &'a str,
    side: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take<T: std::fmt::Debug + Clone>(
        &mut self,
        decode: Decoder<T>,
        encode: fn(&T) -> Vec<u8>,
    ) -> T {
        let (msg, used) = decode(self.rest()).unwrap_or_else(|e| {
            panic!(
                "{}: {} octet {}: {e}: {:?}",
                self.name,
                self.side,
                self.pos,
                String::from_utf8_lossy(&self.rest()[..self.rest().len().min(80)])
            )
        });
        let line = &self.rest()[..used];
        let canonical: Vec<u8> = match line.strip_suffix(b"\r\n") {
            Some(b) => [b, b"\n"].concat(),
            None => line.to_vec(),
        };
        assert_eq!(
            encode(&msg),
            canonical,
            "{}: {:?} does not re-encode to its octets",
            self.name,
            msg
        );
        self.pos += used;
        msg
    }

    /// Reads a payload of `len` octets; returns the data and the final step's description.
    fn payload(&mut self, len: u64, prefix: Hasher) -> (Vec<u8>, String) {
        let mut r = PayloadReceiver::resuming(len, prefix);
        let mut data = Vec::new();
        loop {
            match r.feed(self.rest()) {
                Ok((Step::Data(d), n)) => {
                    data.extend_from_slice(d);
                    self.pos += n;
                }
                Ok((Step::NeedMore, 0)) => return (data, "truncated".into()),
                Ok((Step::NeedMore, n)) => self.pos += n,
                Ok((Step::Complete(d), n)) => {
                    self.pos += n;
                    return (data, format!("complete {d}"));
                }
                Ok((Step::Corrupt { .. }, n)) => {
                    self.pos += n;
                    return (data, "corrupt".into());
                }
                Ok((Step::Aborted(e), n)) => {
                    self.pos += n;
                    return (data, format!("abort {}", e.code));
                }
                Err(e) => return (data, format!("framing error: {e}")),
            }
        }
    }
}

fn hello_bytes(h: &Hello) -> Vec<u8> {
    h.to_bytes()
}
fn reply_bytes(r: &Reply) -> Vec<u8> {
    r.to_bytes()
}
fn request_bytes(r: &Request) -> Vec<u8> {
    r.to_bytes()
}
fn entry_bytes(e: &ferry_wire::Entry) -> Vec<u8> {
    e.to_bytes()
}

#[derive(Default)]
struct Seen {
    codes: BTreeSet<u16>,
    requests: BTreeSet<&'static str>,
}

fn replay(t: &Transcript, seen: &mut Seen) {
    let name = t
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.as_str();
    let client = stream(t, Side::Client);
    let server = stream(t, Side::Server);
    let mut c = Cursor {
        name,
        side: "client",
        buf: &client.bytes,
        pos: 0,
    };
    let mut s = Cursor {
        name,
        side: "server",
        buf: &server.bytes,
        pos: 0,
    };
    let mut files: BTreeMap<String, Vec<u8>> = t
        .files
        .iter()
        .map(|f| (f.name.clone(), f.content.clone()))
        .collect();

    let greeting = match s.take(decode_hello, hello_bytes) {
        Hello::Greeting(g) => g,
        Hello::Refused(e) => {
            seen.codes.insert(e.code.get());
            assert!(e.code.closes_connection(), "{name}: refusal must close");
            assert!(
                s.at_end() && server.closes,
                "{name}: nothing may follow a refusal"
            );
            return;
        }
    };
    if let Some(v) = t.server_option("max-size") {
        assert_eq!(
            greeting.limits().max_size.to_string(),
            v,
            "{name}: greeting vs @server"
        );
    }
    if let Some(v) = t.server_option("max-eager") {
        assert_eq!(
            greeting.limits().max_eager.to_string(),
            v,
            "{name}: greeting vs @server"
        );
    }

    while !c.at_end() {
        let start = c.pos;
        let req = match decode_request(c.rest()) {
            Ok(_) => {
                assert!(
                    !client.invalid_at.contains(&start),
                    "{name}: line marked invalid decodes"
                );
                c.take(decode_request, request_bytes)
            }
            Err(e) => {
                assert!(
                    client.invalid_at.contains(&start),
                    "{name}: client line at {start} is invalid: {e}"
                );
                let DecodeError::Invalid(inv) = e else {
                    panic!("{name}: truncated client line")
                };
                let reply = s.take(decode_reply, reply_bytes);
                let Reply::Err(err) = reply else {
                    panic!("{name}: invalid request answered {reply:?}")
                };
                seen.codes.insert(err.code.get());
                // PUT-8 before ERR-6's 510: an eager put above max-eager gets 502 whatever
                // its name, and its payload is not read.
                let max_eager = greeting.limits().max_eager;
                let expected = match inv.kind {
                    InvalidKind::BadName {
                        put: Some(head), ..
                    } if head.flow == PutFlow::Now && (max_eager == 0 || head.size > max_eager) => {
                        Code::PROTOCOL
                    }
                    _ => inv.reply_code(),
                };
                assert_eq!(err.code, expected, "{name}: reply code for {inv}");
                if err.code.closes_connection() {
                    assert!(
                        s.at_end() && server.closes,
                        "{name}: {} must close the connection",
                        err.code
                    );
                    return;
                }
                match (inv.line_len, inv.kind) {
                    (
                        Some(len),
                        InvalidKind::BadName {
                            put: Some(head), ..
                        },
                    ) if head.flow == PutFlow::Now => {
                        c.pos += len;
                        let (_, end) = c.payload(head.size, Hasher::new());
                        assert!(
                            !end.starts_with("framing"),
                            "{name}: discarded payload: {end}"
                        );
                    }
                    (Some(len), _) if !err.code.closes_connection() => c.pos += len,
                    _ => {
                        assert!(
                            s.at_end() && server.closes,
                            "{name}: {} must close the connection",
                            err.code
                        );
                        return;
                    }
                }
                continue;
            }
        };
        let reply = s.take(decode_reply, reply_bytes);
        match (&req, reply) {
            (Request::Dir, Reply::DirOk { count }) => {
                seen.requests.insert("dir");
                let mut names = Vec::new();
                for _ in 0..count {
                    let e = s.take(decode_entry, entry_bytes);
                    if let Some(content) = files.get(e.name.as_str()) {
                        assert_eq!(e.size, content.len() as u64, "{name}: size of {}", e.name);
                    }
                    names.push(e.name.into_string());
                }
                let mut sorted = names.clone();
                sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                assert_eq!(names, sorted, "{name}: listing not in octet order");
                if !t.is_illustrative() {
                    assert_eq!(
                        names,
                        files.keys().cloned().collect::<Vec<_>>(),
                        "{name}: listing vs folder"
                    );
                }
            }
            (Request::Get { offset, name: file }, Reply::GetOk { size, .. }) => {
                seen.requests.insert("get");
                assert!(*offset <= size, "{name}: ok for an offset past the end");
                let content = files.get(file.as_str()).cloned();
                let mut prefix = Hasher::new();
                if let Some(content) = &content {
                    assert_eq!(size, content.len() as u64, "{name}: size of {file}");
                    prefix.update(&content[..*offset as usize]);
                }
                let (data, end) = s.payload(size - offset, prefix);
                if end.starts_with("complete") {
                    if let Some(content) = &content {
                        assert_eq!(
                            data,
                            &content[*offset as usize..],
                            "{name}: payload of {file}"
                        );
                    }
                } else if let Some(code) = end.strip_prefix("abort ") {
                    seen.codes.insert(code.parse().expect("code"));
                } else {
                    panic!("{name}: get payload ended with {end}");
                }
                if s.at_end() {
                    assert!(server.closes, "{name}: server stream ends without close");
                    return;
                }
            }
            (
                Request::Put {
                    size,
                    mode,
                    flow,
                    name: file,
                },
                first,
            ) => {
                seen.requests.insert("put");
                let final_reply = match (flow, first) {
                    (PutFlow::Wait, Reply::Go) => {
                        let (data, end) = c.payload(*size, Hasher::new());
                        if end == "truncated" {
                            return truncated_upload(
                                name,
                                &mut s,
                                server.closes,
                                client.closes,
                                seen,
                            );
                        }
                        (Some((data, end)), s.take(decode_reply, reply_bytes))
                    }
                    (PutFlow::Wait, r @ Reply::Err(_)) => (None, r),
                    (PutFlow::Now, r) => {
                        let (data, end) = c.payload(*size, Hasher::new());
                        if end == "truncated" {
                            s.pos -= r.to_bytes().len();
                            return truncated_upload(
                                name,
                                &mut s,
                                server.closes,
                                client.closes,
                                seen,
                            );
                        }
                        if end.starts_with("framing error") {
                            let Reply::Err(e) = &r else {
                                panic!("{name}: framing error accepted")
                            };
                            assert_eq!(e.code, Code::PROTOCOL, "{name}");
                            seen.codes.insert(e.code.get());
                            assert!(s.at_end() && server.closes, "{name}: 502 must close");
                            return;
                        }
                        (Some((data, end)), r)
                    }
                    (f, r) => panic!("{name}: put {f:?} answered {r:?}"),
                };
                match final_reply {
                    (Some((data, end)), Reply::PutOk { size: got, digest }) => {
                        assert_eq!(got, *size, "{name}");
                        assert_eq!(end, format!("complete {digest}"), "{name}: put verified");
                        assert_eq!(digest, Digest::of(&data), "{name}");
                        assert!(
                            *mode == PutMode::Replace
                                || !files.contains_key(file.as_str())
                                || t.is_illustrative(),
                            "{name}: new over existing"
                        );
                        files.insert(file.as_str().to_owned(), data);
                    }
                    (payload, Reply::Err(e)) => {
                        seen.codes.insert(e.code.get());
                        if let Some((_, end)) = payload {
                            if e.code == Code::CORRUPT {
                                assert_eq!(end, "corrupt", "{name}");
                            }
                            if e.code == Code::ABORTED {
                                assert!(end.starts_with("abort"), "{name}");
                            }
                        }
                        if e.code.closes_connection() {
                            assert!(s.at_end() && server.closes, "{name}: {} must close", e.code);
                            return;
                        }
                    }
                    (_, r) => panic!("{name}: put answered {r:?}"),
                }
            }
            (Request::Version(v), Reply::VersionOk(got)) => {
                seen.requests.insert("version");
                assert_eq!(*v, got, "{name}");
            }
            (Request::Close, Reply::Bye) => {
                seen.requests.insert("close");
                assert!(
                    s.at_end() && server.closes,
                    "{name}: bye must end the session"
                );
                assert!(c.at_end(), "{name}: nothing after close");
                return;
            }
            (_, Reply::Err(e)) => {
                seen.codes.insert(e.code.get());
                if e.code.closes_connection() {
                    assert!(s.at_end() && server.closes, "{name}: {} must close", e.code);
                    return;
                }
            }
            (r, reply) => panic!("{name}: {r:?} answered {reply:?}"),
        }
    }
    // The client stopped sending: what remains on the server side ends the session.
    while !s.at_end() {
        let r = s.take(decode_reply, reply_bytes);
        let Reply::Err(e) = r else {
            panic!("{name}: unsolicited {r:?}")
        };
        seen.codes.insert(e.code.get());
        assert!(
            e.code.closes_connection(),
            "{name}: unsolicited {} must close",
            e.code
        );
    }
}

/// The client's payload stops short: the client closed (EOF during upload) or stalled. The
/// server may only close, with a closing error such as `421 timeout` or silently.
fn truncated_upload(
    name: &str,
    s: &mut Cursor<'_>,
    server_closes: bool,
    client_closes: bool,
    seen: &mut Seen,
) {
    if s.at_end() {
        assert!(
            client_closes && server_closes,
            "{name}: truncated upload without a close"
        );
        return;
    }
    let r = s.take(decode_reply, reply_bytes);
    let Reply::Err(e) = r else {
        panic!("{name}: truncated upload answered {r:?}")
    };
    seen.codes.insert(e.code.get());
    assert!(
        e.code.closes_connection() && s.at_end() && server_closes,
        "{name}: after a stall only a closing error"
    );
}

#[test]
fn every_transcript_replays_through_the_codec() {
    let mut seen = Seen::default();
    for t in transcripts() {
        replay(&t, &mut seen);
    }
    let missing: Vec<u16> = Code::ALL
        .iter()
        .map(|c| c.get())
        .filter(|c| !seen.codes.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes no transcript shows: {missing:?}");
    for r in ["dir", "get", "put", "version", "close"] {
        assert!(
            seen.requests.contains(r),
            "no transcript shows a successful {r}"
        );
    }
}

#[test]
fn transcripts_cite_existing_requirements_and_names() {
    let spec = std::fs::read_to_string(spec_dir().join("protocol.md")).expect("protocol.md");
    let mut names = BTreeSet::new();
    for t in transcripts() {
        assert!(!t.title.is_empty(), "{}: no @title", t.path.display());
        assert!(!t.requires.is_empty(), "{}: no @requires", t.path.display());
        for id in &t.requires {
            assert!(
                spec.contains(&format!("**[{id}]**")),
                "{}: cites {id}, not in protocol.md",
                t.path.display()
            );
        }
        names.extend(t.files.iter().map(|f| f.name.clone()));
        for s in &t.steps {
            if let Action::Line(l) = &s.action {
                names.insert(String::from_utf8_lossy(l).into_owned());
            }
        }
    }
    let all: String = names.into_iter().collect();
    for n in ["射频仿真.pptx", "天线15.doc"] {
        assert!(all.contains(n), "no transcript uses {n}");
    }
}
