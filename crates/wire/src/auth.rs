//! The messages of the `auth` extension (spec section 16): `auth` and `auth-final` requests,
//! `ok auth` and `more` replies, the `auth=` greeting parameter, user names and the
//! extension's error codes.
//!
//! They are not [`crate::Request`] or [`crate::Reply`] variants: an extension does not change
//! ferry/1 (EXT-6), and only a session that offered `auth` reads them (EXT-3). A server core
//! that offered it decodes a request line with [`decode_auth_request`] when it starts with
//! `auth`; a client that sent one decodes the answer with [`decode_auth_reply`] first.
//!
//! Binary fields are base64 (RFC 4648 section 4, with padding), decoded strictly: a
//! non-canonical encoding is a malformed line, so one value has one spelling.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n, take_while1};
use nom::combinator::{all_consuming, map, opt};
use nom::error::context;
use nom::sequence::preceded;

use crate::code::Code;
use crate::decode::{DecodeError, InvalidKind, run};
use crate::parse::{PResult, fail, sp};

/// The extension's name in `ext` (AUTH-1).
pub const EXTENSION: &str = "auth";
/// The greeting parameter that lists the mechanisms (AUTH-1).
pub const PARAM: &str = "auth";

/// `err 425 auth-throttled`: this address failed too often recently; closes (AUTH-22).
pub const AUTH_THROTTLED: Code = code(425);
/// `err 426 user-busy`: the user has its maximum of sessions (AUTH-21).
pub const USER_BUSY: Code = code(426);
/// `err 530 auth-required`: authenticate first (AUTH-17).
pub const AUTH_REQUIRED: Code = code(530);
/// `err 535 auth-failed`: any failed authentication (AUTH-7, AUTH-8).
pub const AUTH_FAILED: Code = code(535);
/// `err 550 not-permitted`: the user lacks the right for the request (AUTH-19).
pub const NOT_PERMITTED: Code = code(550);

/// The codes of the extension, in ascending order.
pub const CODES: &[Code] = &[
    AUTH_THROTTLED,
    USER_BUSY,
    AUTH_REQUIRED,
    AUTH_FAILED,
    NOT_PERMITTED,
];

const fn code(n: u16) -> Code {
    match Code::new(n) {
        Some(c) => c,
        None => panic!("a reply code has three digits"),
    }
}

/// The short name of one of the extension's codes, as section 16's table writes it.
pub fn code_name(code: Code) -> Option<&'static str> {
    Some(match code.get() {
        425 => "auth-throttled",
        426 => "user-busy",
        530 => "auth-required",
        535 => "auth-failed",
        550 => "not-permitted",
        _ => return None,
    })
}

/// Whether the server closes the connection after one of the extension's codes (425 only).
pub fn closes_connection(code: Code) -> bool {
    code == AUTH_THROTTLED
}

/// Why a text is not a user name (AUTH-4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadUser {
    /// The empty text.
    #[error("a user name cannot be empty")]
    Empty,
    /// More than 64 octets.
    #[error("a user name has at most 64 octets, not {0}")]
    TooLong(usize),
    /// A character outside the grammar.
    #[error("{0:?} is not allowed in a user name (ASCII letters, digits, `.`, `_` and `-` are)")]
    BadChar(char),
    /// `anonymous`, which names the anonymous access, never a login.
    #[error(
        "\"anonymous\" is reserved for the anonymous access (the [anonymous] table), not a user name"
    )]
    Reserved,
}

/// A user name (`user`, AUTH-4): 1 to 64 octets of ASCII letters, digits, `.`, `_` and `-`,
/// not `anonymous`; compared octet by octet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Longest user name in octets.
    pub const MAX_LEN: usize = 64;

    /// The reserved name of the anonymous access.
    pub const ANONYMOUS: &'static str = "anonymous";

    /// Validates `s` as a user name.
    pub fn new(s: &str) -> Result<Self, BadUser> {
        if s.is_empty() {
            return Err(BadUser::Empty);
        }
        if let Some(c) = s
            .chars()
            .find(|&c| !(c.is_ascii() && is_user_octet(c as u8)))
        {
            return Err(BadUser::BadChar(c));
        }
        if s.len() > Self::MAX_LEN {
            return Err(BadUser::TooLong(s.len()));
        }
        if s == Self::ANONYMOUS {
            return Err(BadUser::Reserved);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for UserName {
    type Err = BadUser;
    fn from_str(s: &str) -> Result<Self, BadUser> {
        Self::new(s)
    }
}

impl TryFrom<String> for UserName {
    type Error = BadUser;
    fn try_from(s: String) -> Result<Self, BadUser> {
        Self::new(&s)?;
        Ok(Self(s))
    }
}

impl std::borrow::Borrow<str> for UserName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A string.
#[cfg(feature = "serde")]
impl serde::Serialize for UserName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A string that is a user name (AUTH-4); anything else is an error saying why.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for UserName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        UserName::try_from(s).map_err(serde::de::Error::custom)
    }
}

fn is_user_octet(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// An authentication mechanism (`auth-mech`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `ed25519`: a signature by the user's key (AUTH-9, AUTH-10).
    Ed25519,
    /// `scram-sha-256-plus`: a password, with SCRAM bound to the TLS connection (AUTH-11).
    ScramSha256Plus,
    /// `scram-sha-256`: a password with SCRAM and no binding, only on a plain connection whose
    /// operator allowed authentication (AUTH-2, AUTH-11).
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, in the order section 16 lists them.
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Ed25519,
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha256,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Ed25519 => "ed25519",
            Mechanism::ScramSha256Plus => "scram-sha-256-plus",
            Mechanism::ScramSha256 => "scram-sha-256",
        }
    }

    /// The mechanism of a name, if ferry knows it.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().as_bytes() == name)
    }
}

/// The value of the `auth=` parameter for `mechanisms` (AUTH-1: at least one).
pub fn param_value(mechanisms: &[Mechanism]) -> String {
    mechanisms
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The mechanisms an `auth=` parameter value lists, ignoring names ferry does not know (as
/// EXT-5 does for extensions); `None` when the value is not a comma-separated list of names.
pub fn parse_param_value(value: &str) -> Option<Vec<Mechanism>> {
    let mut out = Vec::new();
    for name in value.split(',') {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return None;
        }
        if let Some(m) = Mechanism::from_name(name.as_bytes())
            && !out.contains(&m)
        {
            out.push(m);
        }
    }
    Some(out)
}

/// `greeting` offering the extension with `mechanisms` (AUTH-1): `auth` in `ext` and the
/// `auth=` parameter. `None` when it already offers it.
pub fn offer(greeting: crate::Greeting, mechanisms: &[Mechanism]) -> Option<crate::Greeting> {
    let ext = crate::ExtName::new(EXTENSION).ok()?;
    let name = crate::ParamName::new(PARAM).ok()?;
    let value = crate::ParamValue::new(param_value(mechanisms)).ok()?;
    greeting
        .with_extension(ext)
        .and_then(|g| g.with_param(name, value))
        .ok()
}

/// What a greeting offers of the extension (AUTH-1): `None` when `ext` does not list `auth`;
/// else the mechanisms of its `auth=` parameter that ferry knows (empty when the parameter
/// is missing or not a list of names: nothing usable is offered).
pub fn offered(greeting: &crate::Greeting) -> Option<Vec<Mechanism>> {
    if !greeting
        .extensions()
        .iter()
        .any(|e| e.as_str() == EXTENSION)
    {
        return None;
    }
    let value = greeting
        .other_params()
        .iter()
        .find(|(name, _)| name.as_str() == PARAM)
        .map(|(_, value)| value.as_str());
    Some(value.and_then(parse_param_value).unwrap_or_default())
}

/// A request of the extension (`ext-request`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthRequest {
    /// `auth ed25519 USER PUBKEY SIG`.
    Ed25519 {
        /// Who the client says it is.
        user: UserName,
        /// The Ed25519 public key.
        public_key: [u8; 32],
        /// The signature of the proof message (AUTH-9).
        signature: [u8; 64],
    },
    /// `auth scram-sha-256-plus CLIENT-FIRST` (or `scram-sha-256` on a plain connection).
    Scram {
        /// With channel binding (`-plus`, over TLS) or without.
        plus: bool,
        /// RFC 5802's client-first-message.
        client_first: Vec<u8>,
    },
    /// `auth-final CLIENT-FINAL`, right after `more` (AUTH-6).
    Final {
        /// RFC 5802's client-final-message.
        client_final: Vec<u8>,
    },
}

/// A reply of the extension (`ext-reply`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthReply {
    /// `ok auth USER [SERVER-FINAL]`: authenticated.
    Ok {
        /// The session's user from now on.
        user: UserName,
        /// RFC 5802's server-final-message, after SCRAM (AUTH-15); absent after `ed25519`.
        server_final: Option<Vec<u8>>,
    },
    /// `more SERVER-FIRST`: the interim reply of a SCRAM `auth`.
    More {
        /// RFC 5802's server-first-message.
        server_first: Vec<u8>,
    },
}

/// A line of the extension's requests as a server reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthLine {
    /// A well-formed request.
    Request(AuthRequest),
    /// `auth` with a mechanism ferry does not know: `err 503 unsupported` (AUTH-6).
    UnknownMechanism,
}

impl AuthRequest {
    /// Appends the request's line to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    /// The request's line, eol (LF) included.
    pub fn encode(&self) -> Vec<u8> {
        let line = match self {
            AuthRequest::Ed25519 {
                user,
                public_key,
                signature,
            } => format!(
                "auth ed25519 {user} {} {}\n",
                B64.encode(public_key),
                B64.encode(signature)
            ),
            AuthRequest::Scram { plus, client_first } => {
                let m = if *plus {
                    Mechanism::ScramSha256Plus
                } else {
                    Mechanism::ScramSha256
                };
                format!("auth {} {}\n", m.as_str(), B64.encode(client_first))
            }
            AuthRequest::Final { client_final } => {
                format!("auth-final {}\n", B64.encode(client_final))
            }
        };
        line.into_bytes()
    }
}

impl AuthReply {
    /// Appends the reply's line to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    /// The reply's line, eol (LF) included.
    pub fn encode(&self) -> Vec<u8> {
        let line = match self {
            AuthReply::Ok {
                user,
                server_final: None,
            } => format!("ok auth {user}\n"),
            AuthReply::Ok {
                user,
                server_final: Some(f),
            } => format!("ok auth {user} {}\n", B64.encode(f)),
            AuthReply::More { server_first } => format!("more {}\n", B64.encode(server_first)),
        };
        line.into_bytes()
    }
}

/// Decodes one request line of the extension (`ext-request`): `Ok((line, len))` with the
/// octets it took, eol included. A line that is not one (nor `auth` with an unknown
/// mechanism) is [`InvalidKind::Syntax`], answered `err 500 syntax`.
pub fn decode_auth_request(buf: &[u8]) -> Result<(AuthLine, usize), DecodeError> {
    run(buf, ext_request, |_, _| InvalidKind::Syntax)
}

/// Decodes one reply line of the extension (`ext-reply`).
pub fn decode_auth_reply(buf: &[u8]) -> Result<(AuthReply, usize), DecodeError> {
    run(buf, ext_reply, |_, _| InvalidKind::Syntax)
}

/// ```abnf
/// ext-request   = auth-req / auth-final
/// ```
fn ext_request(i: &[u8]) -> PResult<'_, AuthLine> {
    context(
        "ext-request",
        all_consuming(alt((map(auth_final, AuthLine::Request), auth_req))),
    )
    .parse(i)
}

/// ```abnf
/// auth-req      = %s"auth" SP (auth-ed25519 / auth-scram) eol
/// ```
/// A mechanism name that is neither is [`AuthLine::UnknownMechanism`] when the line is
/// `auth` SP, a name, and anything after it.
fn auth_req(i: &[u8]) -> PResult<'_, AuthLine> {
    let (i, _) = tag(&b"auth "[..]).parse(i)?;
    if let Ok(done) = alt((
        map(auth_ed25519, AuthLine::Request),
        map(auth_scram, AuthLine::Request),
    ))
    .parse(i)
    {
        return Ok(done);
    }
    let (rest, mech) = context(
        "auth-mech",
        take_while1(|b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
    )
    .parse(i)?;
    if Mechanism::from_name(mech).is_some() || !(rest.is_empty() || rest.starts_with(b" ")) {
        // A known mechanism with malformed fields, or no mechanism name at all.
        return fail(i, "auth-req");
    }
    Ok((&rest[rest.len()..], AuthLine::UnknownMechanism))
}

/// ```abnf
/// auth-ed25519  = %s"ed25519" SP user SP b64 SP b64
/// ```
fn auth_ed25519(i: &[u8]) -> PResult<'_, AuthRequest> {
    let (i, _) = tag(&b"ed25519"[..]).parse(i)?;
    let (i, user) = preceded(sp, user).parse(i)?;
    let (i, public_key) = preceded(sp, b64_exact::<32>).parse(i)?;
    let (i, signature) = preceded(sp, b64_exact::<64>).parse(i)?;
    Ok((
        i,
        AuthRequest::Ed25519 {
            user,
            public_key,
            signature,
        },
    ))
}

/// ```abnf
/// auth-scram    = (%s"scram-sha-256-plus" / %s"scram-sha-256") SP b64
/// ```
fn auth_scram(i: &[u8]) -> PResult<'_, AuthRequest> {
    let (i, plus) = alt((
        map(tag(&b"scram-sha-256-plus"[..]), |_| true),
        map(tag(&b"scram-sha-256"[..]), |_| false),
    ))
    .parse(i)?;
    map(preceded(sp, b64), move |client_first| AuthRequest::Scram {
        plus,
        client_first,
    })
    .parse(i)
}

/// ```abnf
/// auth-final    = %s"auth-final" SP b64 eol
/// ```
fn auth_final(i: &[u8]) -> PResult<'_, AuthRequest> {
    map(
        preceded((tag(&b"auth-final"[..]), sp), b64),
        |client_final| AuthRequest::Final { client_final },
    )
    .parse(i)
}

/// ```abnf
/// ext-reply     = auth-ok / auth-more
/// ```
fn ext_reply(i: &[u8]) -> PResult<'_, AuthReply> {
    context("ext-reply", all_consuming(alt((auth_ok, auth_more)))).parse(i)
}

/// ```abnf
/// auth-ok       = %s"ok" SP %s"auth" SP user [SP b64] eol
/// ```
fn auth_ok(i: &[u8]) -> PResult<'_, AuthReply> {
    let (i, _) = tag(&b"ok auth "[..]).parse(i)?;
    let (i, user) = user(i)?;
    let (i, server_final) = opt(preceded(sp, b64)).parse(i)?;
    Ok((i, AuthReply::Ok { user, server_final }))
}

/// ```abnf
/// auth-more     = %s"more" SP b64 eol
/// ```
fn auth_more(i: &[u8]) -> PResult<'_, AuthReply> {
    map(preceded(tag(&b"more "[..]), b64), |server_first| {
        AuthReply::More { server_first }
    })
    .parse(i)
}

/// ```abnf
/// user          = 1*64(ALPHA / DIGIT / "." / "_" / "-")
/// ```
fn user(i: &[u8]) -> PResult<'_, UserName> {
    let (rest, raw) =
        context("user", take_while_m_n(1, UserName::MAX_LEN, is_user_octet)).parse(i)?;
    if rest.first().is_some_and(|&b| is_user_octet(b)) {
        return fail(i, "user");
    }
    // Only ASCII was taken.
    let Ok(s) = std::str::from_utf8(raw) else {
        return fail(i, "user");
    };
    match UserName::new(s) {
        Ok(u) => Ok((rest, u)),
        Err(_) => fail(i, "user"),
    }
}

/// ```abnf
/// b64           = 1*(ALPHA / DIGIT / "+" / "/") *2"="
/// ```
/// Decoded strictly (canonical, with padding).
fn b64(i: &[u8]) -> PResult<'_, Vec<u8>> {
    let (rest, _) =
        take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/').parse(i)?;
    let (rest, _) = take_while_m_n(0, 2, |b| b == b'=').parse(rest)?;
    let text = &i[..i.len() - rest.len()];
    match B64.decode(text) {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(i, "b64"),
    }
}

/// [`b64`] of exactly `N` octets.
fn b64_exact<const N: usize>(i: &[u8]) -> PResult<'_, [u8; N]> {
    let (rest, v) = context("b64", b64).parse(i)?;
    match <[u8; N]>::try_from(v.as_slice()) {
        Ok(a) => Ok((rest, a)),
        Err(_) => fail(i, "b64"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn user(s: &str) -> UserName {
        UserName::new(s).expect("a user name")
    }

    fn request(line: &[u8]) -> Result<AuthLine, InvalidKind> {
        match decode_auth_request(line) {
            Ok((l, n)) => {
                assert_eq!(n, line.len(), "the whole line is taken");
                Ok(l)
            }
            Err(DecodeError::Invalid(e)) => Err(e.kind),
            Err(DecodeError::Incomplete) => panic!("incomplete: {line:?}"),
        }
    }

    #[test]
    fn user_names_follow_auth_4() {
        assert!(UserName::new("alice").is_ok());
        assert!(UserName::new("Bob.smith_2-x").is_ok());
        assert!(UserName::new(&"a".repeat(64)).is_ok());
        assert_eq!(UserName::new(""), Err(BadUser::Empty));
        assert_eq!(UserName::new(&"a".repeat(65)), Err(BadUser::TooLong(65)));
        assert_eq!(UserName::new("al ice"), Err(BadUser::BadChar(' ')));
        assert_eq!(UserName::new("élise"), Err(BadUser::BadChar('é')));
        assert_eq!(UserName::new("a=b"), Err(BadUser::BadChar('=')));
        assert_eq!(UserName::new("a,b"), Err(BadUser::BadChar(',')));
        assert_eq!(UserName::new("anonymous"), Err(BadUser::Reserved));
        assert!(
            UserName::new("Anonymous").is_ok(),
            "compared octet by octet"
        );
    }

    #[test]
    fn every_request_round_trips() {
        let all = [
            AuthRequest::Ed25519 {
                user: user("alice"),
                public_key: [7; 32],
                signature: [9; 64],
            },
            AuthRequest::Scram {
                plus: true,
                client_first: b"p=ferry-exporter,,n=alice,r=abc".to_vec(),
            },
            AuthRequest::Final {
                client_final: b"c=cD1mZXJyeS1leHBvcnRlciws,r=abcdef,p=xyz".to_vec(),
            },
        ];
        for r in all {
            let line = r.encode();
            assert_eq!(request(&line), Ok(AuthLine::Request(r.clone())), "{line:?}");
            // With CRLF too (FRAME-1).
            let mut crlf = line[..line.len() - 1].to_vec();
            crlf.extend_from_slice(b"\r\n");
            assert_eq!(request(&crlf), Ok(AuthLine::Request(r)));
        }
    }

    #[test]
    fn every_reply_round_trips() {
        for r in [
            AuthReply::Ok {
                user: user("alice"),
                server_final: None,
            },
            AuthReply::Ok {
                user: user("bob"),
                server_final: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()),
            },
            AuthReply::More {
                server_first: b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096".to_vec(),
            },
        ] {
            let line = r.encode();
            let (got, n) = decode_auth_reply(&line).expect("a reply");
            assert_eq!((got, n), (r, line.len()));
        }
    }

    #[test]
    fn unknown_mechanisms_are_503_and_bad_lines_500() {
        assert_eq!(
            request(b"auth kerberos alice xyz\n"),
            Ok(AuthLine::UnknownMechanism)
        );
        assert_eq!(request(b"auth otp\n"), Ok(AuthLine::UnknownMechanism));
        let key = B64.encode([1u8; 32]);
        let sig = B64.encode([2u8; 64]);
        let short = B64.encode([2u8; 63]);
        for bad in [
            "auth\n".to_owned(),
            "auth \n".to_owned(),
            "auth ed25519\n".to_owned(),
            format!("auth ed25519 alice {key}\n"),
            format!("auth ed25519 alice {key} {short}\n"),
            format!("auth ed25519 anonymous {key} {sig}\n"),
            format!("auth ed25519 alice {key} {sig} extra\n"),
            format!("auth ed25519  alice {key} {sig}\n"),
            format!("auth ed25519 {} {key} {sig}\n", "a".repeat(65)),
            "auth scram-sha-256-plus\n".to_owned(),
            "auth scram-sha-256-plus !!!!\n".to_owned(),
            "auth-final\n".to_owned(),
            "AUTH scram-sha-256-plus YWJj\n".to_owned(),
            "dir\n".to_owned(),
        ] {
            assert_eq!(request(bad.as_bytes()), Err(InvalidKind::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn base64_is_decoded_strictly() {
        // "YQ==" is canonical for "a"; "YR==" has stray bits, "YQ" lacks padding.
        assert!(request(b"auth-final YQ==\n").is_ok());
        assert_eq!(request(b"auth-final YR==\n"), Err(InvalidKind::Syntax));
        assert_eq!(request(b"auth-final YQ\n"), Err(InvalidKind::Syntax));
        assert_eq!(request(b"auth-final YQ===\n"), Err(InvalidKind::Syntax));
        assert_eq!(request(b"auth-final Y-Q=\n"), Err(InvalidKind::Syntax));
    }

    #[test]
    fn the_param_lists_mechanisms() {
        let all = param_value(&Mechanism::ALL);
        assert_eq!(all, "ed25519,scram-sha-256-plus,scram-sha-256");
        assert_eq!(parse_param_value(&all), Some(Mechanism::ALL.to_vec()));
        assert_eq!(
            parse_param_value("otp,ed25519,ed25519"),
            Some(vec![Mechanism::Ed25519]),
            "unknown names ignored, duplicates once"
        );
        assert_eq!(parse_param_value(""), None);
        assert_eq!(parse_param_value("ed25519,"), None);
        assert_eq!(parse_param_value("Ed25519"), None);
    }

    #[test]
    fn codes_have_names_and_classes() {
        let names: Vec<_> = CODES.iter().map(|&c| code_name(c)).collect();
        assert!(names.iter().all(Option::is_some));
        assert!(CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(
            CODES.iter().all(|c| c.name().is_none()),
            "not ferry/1's codes"
        );
        let closing: Vec<_> = CODES.iter().filter(|&&c| closes_connection(c)).collect();
        assert_eq!(closing, [&AUTH_THROTTLED]);
        assert_eq!(AUTH_FAILED.class(), crate::Class::Permanent);
        assert_eq!(USER_BUSY.class(), crate::Class::Transient);
    }

    proptest! {
        #[test]
        fn any_line_decodes_or_fails_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_auth_request(&bytes);
            let _ = decode_auth_reply(&bytes);
        }

        #[test]
        fn scram_messages_round_trip(first in proptest::collection::vec(any::<u8>(), 1..200)) {
            let r = AuthRequest::Scram { plus: true, client_first: first };
            prop_assert_eq!(request(&r.encode()), Ok(AuthLine::Request(r)));
        }
    }
}
