//! ferry/1 over TLS (spec section 15): the handshake (TLS 1.3 only, ALPN `ferry/1`), no
//! plaintext on a TLS port, `close_notify` at every end of a session, and uploads cut without
//! it. They run only against a TLS target (`ferrys://`); against plain ferry/1 they are
//! `unimplemented`. Every other server case also runs over TLS against such a target.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use ferry_tls::rustls::{self, AlertDescription, ClientConnection, SupportedProtocolVersion};

use super::*;
use crate::net::{TlsEnd, Transport, handshake, local};

/// The TLS cases: (id, title, requirements, body).
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "TLS-2/1",
        "a ClientHello that offers only TLS 1.2 is refused: an alert, never a session",
        &["TLS-2"],
        tls_2_tls12_refused,
    ),
    (
        "TLS-3/1",
        "a ClientHello without ALPN is refused",
        &["TLS-3"],
        tls_3_no_alpn,
    ),
    (
        "TLS-3/2",
        "a ClientHello offering only ALPN http/1.1 is refused",
        &["TLS-3"],
        tls_3_other_alpn,
    ),
    (
        "TLS-4/1",
        "nothing before the ClientHello; TLS 1.3, ALPN ferry/1, the greeting as application data",
        &["TLS-4", "TLS-2", "TLS-3"],
        tls_4_greeting_inside,
    ),
    (
        "TLS-5/1",
        "plaintext ferry/1 requests on the TLS port: no greeting, nothing but TLS records, closed",
        &["TLS-5"],
        tls_5_plaintext,
    ),
    (
        "TLS-5/2",
        "random octets on the TLS port: nothing but TLS records, closed",
        &["TLS-5"],
        tls_5_random,
    ),
    (
        "TLS-6/1",
        "`close`: `bye`, then close_notify before the TCP close",
        &["TLS-6"],
        tls_6_close,
    ),
    (
        "TLS-6/2",
        "a closing error (502): close_notify before the TCP close",
        &["TLS-6"],
        tls_6_closing_error,
    ),
    (
        "TLS-6/3",
        "the client's close_notify and EOF: the server's close_notify before its TCP close",
        &["TLS-6", "CLOSE-4"],
        tls_6_client_eof,
    ),
    (
        "TLS-7/1",
        "uploads cut without close_notify (in a chunk, before the trailer) are not stored",
        &["TLS-7", "PUT-16"],
        tls_7_truncated_upload,
    ),
];

/// The target's TLS configuration, or `unimplemented` for a plain target.
fn tls_target(ctx: &Ctx<'_>) -> Res<ferry_tls::ClientTls> {
    ctx.addr.tls.clone().ok_or_else(|| {
        unimplemented("needs a ferry/1 over TLS server (give the target as ferrys://HOST:PORT)")
    })
}

/// A client connection that offers `versions` and `alpn`, accepting any key: the cases that
/// offer what the server must refuse judge the server's answer, not its identity.
fn raw_client(
    tls: &ferry_tls::ClientTls,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Res<ClientConnection> {
    tls.probe(versions, alpn).map_err(local)
}

/// A TCP connection to the target, nothing sent.
fn tcp(ctx: &Ctx<'_>) -> Res<TcpStream> {
    let left = ctx
        .deadline()
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let s = TcpStream::connect_timeout(&ctx.addr.addr, left).map_err(|e| {
        violation(
            "CONN-7",
            format!("the server accepts a connection on {}", ctx.addr),
            format!("connect failed: {e}"),
        )
    })?;
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
    Ok(s)
}

/// How a handshake the server must refuse went.
enum Attempt {
    /// Refused: the alert received, if any, and what happened.
    Refused(Option<AlertDescription>, String),
    /// Completed: the protocol version and ALPN protocol negotiated.
    Completed(String),
}

/// Runs the handshake of `conn` against the target until it completes or fails.
fn attempt(ctx: &Ctx<'_>, mut conn: ClientConnection) -> Res<Attempt> {
    let mut s = tcp(ctx)?;
    while conn.is_handshaking() {
        let left = ctx.deadline().saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(violation(
                "TLS-2",
                "the handshake refused with an alert",
                "neither refused nor completed before the case's deadline",
            ));
        }
        let _ = s.set_read_timeout(Some(left));
        match conn.complete_io(&mut s) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                let alert = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .and_then(|r| match r {
                        rustls::Error::AlertReceived(a) => Some(*a),
                        _ => None,
                    });
                return Ok(Attempt::Refused(alert, crate::net::explain(&e)));
            }
        }
    }
    Ok(Attempt::Completed(format!(
        "a session was established ({:?}, ALPN {})",
        conn.protocol_version(),
        conn.alpn_protocol()
            .map_or_else(|| "none".to_owned(), |p| show(p).to_string())
    )))
}

/// Offers what the server must refuse; `wanted` are the alerts the spec names.
fn refused(
    ctx: &Ctx<'_>,
    req: &str,
    what: &str,
    conn: ClientConnection,
    wanted: &[AlertDescription],
) -> Res<Done> {
    match attempt(ctx, conn)? {
        Attempt::Completed(how) => Err(violation(
            req,
            format!("{what}: the handshake aborted with an alert"),
            how,
        )),
        Attempt::Refused(Some(a), _) if wanted.contains(&a) => {
            Ok(Done::PassWith(format!("refused with the alert {a:?}")))
        }
        Attempt::Refused(alert, how) => Ok(Done::PassWith(format!(
            "refused ({}: {how}); the spec names {wanted:?}",
            alert.map_or_else(|| "no alert".to_owned(), |a| format!("alert {a:?}"))
        ))),
    }
}

fn tls_2_tls12_refused(ctx: &mut Ctx<'_>) -> Res<Done> {
    let tls = tls_target(ctx)?;
    let conn = raw_client(&tls, &[&rustls::version::TLS12], &[ferry_tls::ALPN])?;
    refused(
        ctx,
        "TLS-2",
        "a ClientHello offering only TLS 1.2",
        conn,
        &[
            AlertDescription::ProtocolVersion,
            AlertDescription::HandshakeFailure,
        ],
    )
}

fn tls_3_no_alpn(ctx: &mut Ctx<'_>) -> Res<Done> {
    let tls = tls_target(ctx)?;
    let conn = raw_client(&tls, &[&rustls::version::TLS13], &[])?;
    refused(
        ctx,
        "TLS-3",
        "a ClientHello without ALPN",
        conn,
        &[
            AlertDescription::NoApplicationProtocol,
            AlertDescription::HandshakeFailure,
        ],
    )
}

fn tls_3_other_alpn(ctx: &mut Ctx<'_>) -> Res<Done> {
    let tls = tls_target(ctx)?;
    let conn = raw_client(&tls, &[&rustls::version::TLS13], &[b"http/1.1"])?;
    refused(
        ctx,
        "TLS-3",
        "a ClientHello offering only ALPN http/1.1",
        conn,
        &[AlertDescription::NoApplicationProtocol],
    )
}

fn tls_4_greeting_inside(ctx: &mut Ctx<'_>) -> Res<Done> {
    let tls = tls_target(ctx)?;
    let s = tcp(ctx)?;
    // TLS from the first octet: the server waits for the ClientHello.
    let mut raw = Conn::over(
        Transport::Plain(s.try_clone().map_err(local)?),
        ctx.deadline(),
    );
    raw.expect_silence(
        "TLS-2",
        Duration::from_millis(500),
        "a TLS server sends nothing before the client's ClientHello",
    )?;
    drop(raw);
    let stream = handshake(tls.connect().map_err(local)?, s, ctx.deadline())?;
    ensure(
        stream.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3),
        "TLS-2",
        "TLS 1.3",
        || format!("{:?}", stream.conn.protocol_version()),
    )?;
    let mut c = Conn::over(Transport::Tls(Box::new(stream)), ctx.deadline());
    c.greeting()?;
    c.dir("TLS-4")?;
    c.close()?;
    Ok(Done::Pass)
}

/// TLS records only: each 5-octet header with a known content type and version 3.x and
/// complete; `Err` names the first octets that are not.
fn tls_records(mut b: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    while !b.is_empty() {
        if b.len() < 5 {
            return Err(format!("an incomplete record header {:?}", show(b)));
        }
        let len = usize::from(u16::from_be_bytes([b[3], b[4]]));
        if !(20..=23).contains(&b[0]) || b[1] != 3 || len > 16384 + 256 {
            return Err(format!("octets that are no TLS record: {:?}", show(b)));
        }
        if b.len() < 5 + len {
            return Err(format!("an incomplete record {:?}", show(b)));
        }
        b = &b[5 + len..];
        n += 1;
    }
    Ok(n)
}

/// Sends `octets` on a new TCP connection; the server must answer with TLS records at most
/// (no greeting) and close the connection.
fn not_served(ctx: &Ctx<'_>, what: &str, octets: &[u8]) -> Res<Done> {
    tls_target(ctx)?;
    let mut s = tcp(ctx)?;
    let _ = s.write_all(octets);
    let mut got = Vec::new();
    let closed = loop {
        let left = ctx.deadline().saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let _ = s.set_read_timeout(Some(left));
        let mut piece = [0u8; 4096];
        match s.read(&mut piece) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&piece[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false;
            }
            Err(_) => break true,
        }
    };
    let records = tls_records(&got).map_err(|e| {
        violation(
            "TLS-5",
            format!("nothing but TLS records in answer to {what}"),
            e,
        )
    })?;
    ensure(
        closed,
        "TLS-5",
        format!("the connection closed after {what}"),
        || "still open at the case's deadline".to_owned(),
    )?;
    Ok(Done::PassWith(format!(
        "closed after {records} TLS record(s) ({} octets)",
        got.len()
    )))
}

fn tls_5_plaintext(ctx: &mut Ctx<'_>) -> Res<Done> {
    not_served(ctx, "plaintext `dir` and `close`", b"dir\nclose\n")
}

fn tls_5_random(ctx: &mut Ctx<'_>) -> Res<Done> {
    // Octets of a fixed pseudo-random pattern whose first octet is no TLS content type.
    let mut x: u32 = 0x2545_f491;
    let octets: Vec<u8> = std::iter::once(0xa7)
        .chain((1..300).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }))
        .collect();
    not_served(ctx, "300 random octets", &octets)
}

/// After the server closed `c`: it sent close_notify first.
fn closed_with_notify(c: &Conn, after: &str) -> Res<()> {
    match c.tls_end() {
        Some(TlsEnd::CloseNotify) => Ok(()),
        Some(TlsEnd::Cut(why)) => Err(violation(
            "TLS-6",
            format!("close_notify before the TCP close, after {after}"),
            why.clone(),
        )),
        None => Err(local("the end of the TLS connection was not seen")),
    }
}

fn tls_6_close(ctx: &mut Ctx<'_>) -> Res<Done> {
    tls_target(ctx)?;
    let mut c = ctx.session()?;
    c.send("CLOSE-1", b"close\n")?;
    c.expect_reply("CLOSE-1", &Reply::Bye)?;
    c.expect_closed("CLOSE-1", "bye")?;
    closed_with_notify(&c, "bye")?;
    Ok(Done::Pass)
}

fn tls_6_closing_error(ctx: &mut Ctx<'_>) -> Res<Done> {
    tls_target(ctx)?;
    let mut c = ctx.session()?;
    c.send("PUT-1", b"put 5 new later x\n")?;
    c.expect_err("PUT-1", 502)?;
    c.expect_closed("ERR-6", "err 502")?;
    closed_with_notify(&c, "err 502")?;
    Ok(Done::Pass)
}

fn tls_6_client_eof(ctx: &mut Ctx<'_>) -> Res<Done> {
    tls_target(ctx)?;
    let mut c = ctx.session()?;
    c.dir("DIR-1")?;
    c.shutdown_write();
    c.expect_closed("CLOSE-4", "the client's close_notify and EOF")?;
    closed_with_notify(&c, "the client's EOF")?;
    Ok(Done::Pass)
}

fn tls_7_truncated_upload(ctx: &mut Ctx<'_>) -> Res<Done> {
    tls_target(ctx)?;
    // Cut inside a chunk: the TCP connection ends without close_notify (dropping the
    // connection sends none).
    let a = ctx.name("tls-cut-chunk");
    let c = start_upload(ctx, &a, PutMode::New, 10, b"data 10\nabcd")?;
    drop(c);
    // Every octet of the payload sent, cut before the trailer.
    let b = ctx.name("tls-cut-trailer");
    let mut c = ctx.session()?;
    let mut w = put_line(10, PutMode::New, PutFlow::Now, &b);
    w.extend(chunk(b"abcdefghij"));
    c.send("PUT-16", &w)?;
    drop(c);
    // A replacement cut the same way leaves the old content.
    let r = ctx.name("tls-cut-replace");
    upload(ctx, &r, b"old")?;
    let c = start_upload(ctx, &r, PutMode::Replace, 3, b"data 3\nnew")?;
    drop(c);
    std::thread::sleep(Duration::from_millis(100));
    let why = "the TCP connection was cut without close_notify before the upload's trailer";
    invisible(ctx, "TLS-7", &a, why)?;
    invisible(ctx, "TLS-7", &b, why)?;
    let mut c = ctx.session()?;
    expect_content(&mut c, "TLS-7", &r, b"old")?;
    c.close()?;
    Ok(Done::Pass)
}

#[cfg(test)]
mod tests {
    use super::tls_records;

    #[test]
    fn records_are_recognized() {
        assert_eq!(tls_records(b""), Ok(0));
        assert_eq!(tls_records(&[21, 3, 3, 0, 2, 2, 50]), Ok(1));
        assert_eq!(
            tls_records(&[21, 3, 3, 0, 2, 2, 50, 23, 3, 3, 0, 1, 9]),
            Ok(2)
        );
        assert!(tls_records(b"ferry 1 max-line=4096\n").is_err());
        assert!(tls_records(&[21, 3, 3, 0, 2, 2]).is_err());
        assert!(tls_records(&[21, 3, 3]).is_err());
        assert!(tls_records(&[21, 2, 3, 0, 0]).is_err());
    }
}
