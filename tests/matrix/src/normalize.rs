//! What two conforming servers may answer differently to the same octets, in one place.

use crate::FIXTURE_MTIME_TEXT;
use crate::exec::{Msg, err_code};

/// Rewrites what `msgs` received from one server so that two conforming servers given the
/// same octets on identical served folders produce equal results. Each difference it
/// removes, and the requirement that allows it:
///
/// 1. **MTIME of files created in the session** (in `ok get SIZE MTIME` and `dir` entries):
///    a stored file's MTIME is the time of its commit as the server's storage records it
///    (protocol.md 6.4, notes; DIR-5, GET-2), so it depends on when each server committed.
///    Every MTIME other than the fixtures' ([`FIXTURE_MTIME_TEXT`]) becomes `MTIME`; a
///    fixture's MTIME must match exactly.
/// 2. **Chunk boundaries in payloads**: the sender chooses chunk sizes (DATA-13, DATA-2;
///    section 14: replays compare "payload octets and trailers, not chunk boundaries"). The
///    executor already records a payload as its concatenated octets and its trailer.
/// 3. **Error TEXT** in `err CODE [TEXT]` and `abort CODE [TEXT]`: human-readable only
///    (ERR-4; ERR-7 is a SHOULD), so it is dropped and only the code compared.
/// 4. **Order of the greeting's parameters**: "each … exactly once, in any order" (HELLO-2);
///    the parameters are sorted.
/// 5. **How a connection ends**: EOF or a reset after the server's last message are the
///    same (CLOSE-6 is a SHOULD); the executor records both as [`Msg::Eof`].
/// 6. **How replies are split into reads** (FRAME-1): the executor records messages, not
///    reads.
///
/// Nothing else may differ: reply codes, reply order, sizes, digests, payload octets, entry
/// names and order, when a connection closes, and the files left in the served folder.
pub fn normalize(msgs: &[Msg]) -> Vec<Msg> {
    msgs.iter()
        .map(|m| match m {
            Msg::Greeting(l) => {
                Msg::Greeting(greeting(l).map_or_else(|| l.clone(), String::into_bytes))
            }
            Msg::Line(l) => Msg::Line(line(l)),
            Msg::Payload { data, trailer } => Msg::Payload {
                data: data.clone(),
                trailer: if trailer.starts_with(b"abort ") {
                    trailer[..trailer.len().min(9)].to_vec()
                } else {
                    trailer.clone()
                },
            },
            other => other.clone(),
        })
        .collect()
}

/// A greeting with its parameters sorted (HELLO-2), or `None` if it is not
/// `ferry/VERSIONS PARAM…`.
pub fn greeting(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split(' ');
    let versions = fields.next()?;
    if !versions.starts_with("ferry/") {
        return None;
    }
    let mut params: Vec<&str> = fields.collect();
    params.sort_unstable();
    Some(
        std::iter::once(versions)
            .chain(params)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn line(l: &[u8]) -> Vec<u8> {
    if let Some(code) = err_code(l) {
        return format!("err {code}").into_bytes();
    }
    let text = String::from_utf8_lossy(l);
    let fields: Vec<&str> = text.split(' ').collect();
    let mask = |at: usize| -> Vec<u8> {
        let mut f = fields.clone();
        if f[at] != FIXTURE_MTIME_TEXT {
            f[at] = "MTIME";
        }
        f.join(" ").into_bytes()
    };
    if fields.len() == 4 && fields[0] == "ok" && fields[1] == "get" {
        return mask(3);
    }
    if fields.len() >= 3
        && !fields[0].is_empty()
        && fields[0].bytes().all(|b| b.is_ascii_digit())
        && fields[1].len() == 20
        && fields[1].ends_with('Z')
    {
        // A `dir` entry: keep the name's octets exactly.
        let head = format!(
            "{} {} ",
            fields[0],
            if fields[1] == FIXTURE_MTIME_TEXT {
                FIXTURE_MTIME_TEXT
            } else {
                "MTIME"
            }
        );
        let name_at = fields[0].len() + 1 + fields[1].len() + 1;
        return [head.as_bytes(), &l[name_at..]].concat();
    }
    l.to_vec()
}
