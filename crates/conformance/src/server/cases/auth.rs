//! The `auth` extension (spec section 16): logins with Ed25519 keys and SCRAM-SHA-256-PLUS
//! passwords bound to the TLS connection, every failure the same `err 535`, nothing before
//! authentication, rights per operation and each user confined to a folder of its own.
//!
//! They need the users the server knows (`--auth DIR`, made by `ferry conform auth-setup`,
//! see [`crate::auth`]) and run over TLS only, against the first server (main, then extras)
//! whose greeting offers `auth`; otherwise they are `unimplemented`. Correct proofs come from
//! `ferry_auth` (`proof::sign`, `scram::ClientExchange`); the wrong ones, and the SCRAM
//! exchanges with headers or attributes a server must refuse, are written here by hand
//! ([`Hand`]), each checked against a correct hand-made exchange first.

use std::num::NonZeroU32;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_auth::keys::PrivateKey;
use ferry_auth::scram::ClientExchange;
use ferry_wire::auth::{
    self as wire_auth, AuthReply, AuthRequest, Mechanism, UserName, decode_auth_reply,
};
use ferry_wire::{ErrorReply, Greeting};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use super::*;
use crate::auth::{Credentials, Login};
use crate::net::local;

/// The auth cases: (id, title, requirements, body).
pub(crate) const CASES: &[(&str, &str, &[&str], CaseFn)] = &[
    (
        "AUTH-1/1",
        "the greeting lists auth in ext and auth= with its mechanisms; over TLS not scram-sha-256",
        &["AUTH-1", "AUTH-11"],
        auth_1_offer,
    ),
    (
        "AUTH-17/1",
        "before auth: dir, get, put (wait and eager) get 530, the eager payload is discarded; version and close are allowed",
        &["AUTH-17", "PUT-9"],
        auth_17_before,
    ),
    (
        "AUTH-10/1",
        "ed25519: each user's key, signed over this connection's channel binding, logs in",
        &["AUTH-10", "AUTH-18", "TLS-15"],
        auth_10_ed25519,
    ),
    (
        "AUTH-8/1",
        "unknown user, another user's key, bad signature, another user's or channel's proof, wrong password: one identical err 535",
        &["AUTH-8", "AUTH-10", "AUTH-14"],
        auth_8_same_failure,
    ),
    (
        "AUTH-10/2",
        "an ed25519 proof made for another connection's channel binding is refused (no replay)",
        &["AUTH-10", "AUTH-8"],
        auth_10_replay,
    ),
    (
        "AUTH-10/3",
        "PUBKEY and SIG in non-canonical base64 (no padding, unused bits set) do not log in",
        &["AUTH-10"],
        auth_10_canonical,
    ),
    (
        "AUTH-4/1",
        "user names compare octet by octet (ALICE is not alice); anonymous is no user name",
        &["AUTH-4", "AUTH-8"],
        auth_4_names,
    ),
    (
        "AUTH-11/1",
        "scram-sha-256-plus: the password logs in, the server's signature verifies, at least 4096 iterations",
        &["AUTH-11", "AUTH-13", "AUTH-18", "TLS-15"],
        auth_11_scram,
    ),
    (
        "AUTH-11/2",
        "SCRAM without this connection's binding (n,, y,, another type, another connection's CB) is refused",
        &["AUTH-11", "AUTH-8"],
        auth_11_binding,
    ),
    (
        "AUTH-12/1",
        "SCRAM with an extension (m=) or an authorization identity (a=) is refused",
        &["AUTH-12", "AUTH-8"],
        auth_12_extensions,
    ),
    (
        "AUTH-14/1",
        "an unknown user gets `more` like a real user's, with the same salt and iterations at every attempt, then 535",
        &["AUTH-14", "AUTH-8"],
        auth_14_unknown_user,
    ),
    (
        "AUTH-6/1",
        "unknown mechanism: 503; auth-final without more: 500; another line after more: 535, then that line is served",
        &["AUTH-6"],
        auth_6_exchange,
    ),
    (
        "AUTH-7/1",
        "a second auth in an authenticated session gets 535 and the session keeps its user",
        &["AUTH-7"],
        auth_7_once,
    ),
    (
        "AUTH-19/1",
        "a request without its right gets 550 before the file is looked at (dir: list, get: read, put: create)",
        &["AUTH-19", "PUT-9"],
        auth_19_rights,
    ),
    (
        "AUTH-19/2",
        "put replace without the replace right is stored as new: 512 for an existing name, stored for a new one",
        &["AUTH-19"],
        auth_19_replace,
    ),
    (
        "AUTH-18/1",
        "each user sees and reaches only its own folder",
        &["AUTH-18"],
        auth_18_isolation,
    ),
    (
        "TREE-13/2",
        "tree requests with users: 530 before a login; 550 without the request's right, for paths that exist or not; with it, served",
        &["TREE-13", "AUTH-17", "AUTH-19"],
        tree_13_rights,
    ),
];

// ------------------------------------------------------------------ environment ---

/// What each auth case adds to its deadline for the delays a server may put on failed
/// logins (AUTH-20): ferry's own reach 4 s per failure, and a case fails a few.
const THROTTLE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the auth cases of a run log in, and as whom.
struct Env {
    ep: Endpoint,
    mechanisms: Vec<Mechanism>,
    creds: Arc<Credentials>,
    deadline: Instant,
}

/// The values of the greeting's `auth=` parameters.
fn auth_params(g: &Greeting) -> Vec<String> {
    g.other_params()
        .iter()
        .filter(|(n, _)| n.as_str() == wire_auth::PARAM)
        .map(|(_, v)| v.as_str().to_owned())
        .collect()
}

/// The server offering `auth`, with the credentials of `--auth`; `unimplemented` without
/// them, on plain ferry/1, or when no server of the run offers `auth`.
fn env(ctx: &Ctx<'_>) -> Res<Env> {
    let creds = ctx.target.auth.clone().ok_or_else(|| {
        unimplemented(
            "needs the users the server knows: --auth DIR (make DIR with `ferry conform \
             auth-setup DIR` and give the server its users, see DIR/USERS.md)",
        )
    })?;
    if ctx.addr.tls.is_none() {
        return Err(unimplemented(
            "the auth cases run over TLS only (give the server as ferrys://HOST:PORT): on plain \
             ferry/1 nothing a client proves is bound to the connection (AUTH-2)",
        ));
    }
    let (ep, g) = ctx.users_server("ext=auth (the users of --auth DIR)")?;
    let mechanisms = auth_params(&g)
        .iter()
        .filter_map(|v| wire_auth::parse_param_value(v))
        .flatten()
        .collect();
    Ok(Env {
        ep,
        mechanisms,
        creds,
        // AUTH-20: a server may hold back its answer to a failed login, longer as the
        // failures of an address grow; the runner fails logins on purpose.
        deadline: ctx.deadline() + THROTTLE_GRACE,
    })
}

impl Env {
    /// A session, its greeting read; and its channel binding.
    fn open(&self) -> Res<(Conn, [u8; 32])> {
        let (c, _) = Conn::open(&self.ep, self.deadline)?;
        let cb = c
            .channel_binding()
            .ok_or_else(|| local("no TLS channel binding for the runner's connection"))?;
        Ok((c, cb))
    }

    fn offers(&self, m: Mechanism) -> bool {
        self.mechanisms.contains(&m)
    }

    /// `unimplemented` unless the server offers `m`.
    fn need(&self, m: Mechanism) -> Res<()> {
        if self.offers(m) {
            Ok(())
        } else {
            Err(unimplemented(format!(
                "needs the mechanism {} (the server offers auth={})",
                m.as_str(),
                wire_auth::param_value(&self.mechanisms)
            )))
        }
    }

    /// A session logged in as `who` (ed25519 when offered, else the password).
    fn session_as(&self, who: &Login) -> Res<Conn> {
        let (mut c, cb) = self.open()?;
        self.login(&mut c, &cb, who)?;
        Ok(c)
    }

    /// Logs `c` in as `who`: ed25519 when offered, else SCRAM-SHA-256-PLUS.
    fn login(&self, c: &mut Conn, cb: &[u8; 32], who: &Login) -> Res<()> {
        if self.offers(Mechanism::Ed25519) {
            c.send("AUTH-10", &ed25519_line(&who.key, cb, who.name.as_str()))?;
            expect_ok(c, "AUTH-10", who)?;
            Ok(())
        } else if self.offers(Mechanism::ScramSha256Plus) {
            scram_login(c, cb, who).map(|_| ())
        } else {
            Err(unimplemented(format!(
                "the server offers neither ed25519 nor scram-sha-256-plus (auth={})",
                wire_auth::param_value(&self.mechanisms)
            )))
        }
    }
}

// ------------------------------------------------------------------ replies ---

/// An answer to an `auth` or `auth-final` request (or to a request of ferry/1).
#[derive(Debug)]
enum Answer {
    Ok {
        user: UserName,
        server_final: Option<Vec<u8>>,
    },
    More(Vec<u8>),
    Err(ErrorReply),
    Other(Reply),
}

/// Reads one reply line, as the extension's replies or ferry/1's. `err 425` (the server
/// throttles the runner's address, AUTH-22) ends the case as `unimplemented`.
fn answer(c: &mut Conn, req: &str, expected: &str) -> Res<(Answer, String)> {
    let line = c.server_line(req, expected)?;
    let shown = show(line.strip_suffix(b"\n").unwrap_or(&line)).to_string();
    if let Ok((r, _)) = decode_auth_reply(&line) {
        return Ok((
            match r {
                AuthReply::Ok { user, server_final } => Answer::Ok { user, server_final },
                AuthReply::More { server_first } => Answer::More(server_first),
            },
            shown,
        ));
    }
    match ferry_wire::decode_reply(&line) {
        Ok((Reply::Err(e), _)) => {
            c.check_code(&e)?;
            if e.code == wire_auth::AUTH_THROTTLED {
                return Err(unimplemented(format!(
                    "the server throttles the runner's address ({shown}, AUTH-22) after the \
                     deliberate failures of the auth cases (about 25 in a run): let the \
                     runner's address fail that often, then run them again"
                )));
            }
            Ok((Answer::Err(e), shown))
        }
        Ok((r, _)) => Ok((Answer::Other(r), shown)),
        Err(e) => Err(violation(
            "FRAME-6",
            format!("a reply line (waiting for {expected})"),
            format!("{shown:?}: {e}"),
        )),
    }
}

/// Expects `ok auth NAME` (no server-final) for `who`.
fn expect_ok(c: &mut Conn, req: &str, who: &Login) -> Res<()> {
    let want = format!("ok auth {}", who.name);
    match answer(c, req, &want)? {
        (Answer::Ok { user, server_final }, shown) => ensure(
            user == who.name && server_final.is_none(),
            req,
            want,
            || shown,
        ),
        (_, shown) => Err(violation(req, want, shown)),
    }
}

/// Expects `err CODE`; returns the line.
fn expect_code(c: &mut Conn, req: &str, code: u16, why: &str) -> Res<String> {
    let want = format!("err {code} ({why})");
    match answer(c, req, &want)? {
        (Answer::Err(e), shown) if e.code.get() == code => Ok(shown),
        (_, shown) => Err(violation(req, want, shown)),
    }
}

/// Expects `err 535` for an `auth` that must fail; returns the line.
fn expect_refused(c: &mut Conn, req: &str, why: &str) -> Res<String> {
    expect_code(c, req, 535, why)
}

/// Checks that every refusal line is the same (AUTH-8).
fn same_lines(lines: &[(String, String)]) -> Res<()> {
    let Some((first_why, first)) = lines.first() else {
        return Ok(());
    };
    for (why, line) in lines {
        ensure(
            line == first,
            "AUTH-8",
            format!("the same refusal for every failure ({first:?} for {first_why})"),
            || format!("{line:?} for {why}"),
        )?;
    }
    Ok(())
}

// ------------------------------------------------------------------ ed25519 ---

/// `auth ed25519 USER PUBKEY SIG` with `key`'s proof for `user` on the channel `cb`.
fn ed25519_line(key: &PrivateKey, cb: &[u8; 32], user: &str) -> Vec<u8> {
    let (public_key, signature) = match UserName::new(user) {
        Ok(u) => ferry_auth::proof::sign(key, cb, &u),
        // Not a user name (`anonymous`): the proof message made by hand.
        Err(_) => {
            let public_key = *key.public().raw();
            let mut m = ferry_auth::proof::CONTEXT.to_vec();
            m.push(0);
            m.extend_from_slice(cb);
            m.extend_from_slice(user.as_bytes());
            m.push(0);
            m.extend_from_slice(&public_key);
            let mut signature = [0u8; 64];
            signature.copy_from_slice(key.key_pair().sign(&m).as_ref());
            (public_key, signature)
        }
    };
    raw_ed25519_line(user, &B64.encode(public_key), &B64.encode(signature))
}

fn raw_ed25519_line(user: &str, pubkey: &str, sig: &str) -> Vec<u8> {
    format!("auth ed25519 {user} {pubkey} {sig}\n").into_bytes()
}

/// The fields of an ed25519 line, to rewrite them.
fn fields(line: &[u8]) -> (String, String, String) {
    let text = String::from_utf8_lossy(line);
    let mut f = text.trim_end().split(' ').skip(2).map(str::to_owned);
    let user = f.next().unwrap_or_default();
    let pubkey = f.next().unwrap_or_default();
    let sig = f.next().unwrap_or_default();
    (user, pubkey, sig)
}

/// A fresh key no user has.
fn stranger() -> Res<PrivateKey> {
    PrivateKey::generate("stranger@ferry-conform").map_err(local)
}

/// A user name no server knows: the case's prefix (unique to the run) and `nobody`.
fn unknown_user(ctx: &Ctx<'_>) -> String {
    format!("{}nobody", ctx.prefix)
}

// ------------------------------------------------------------------ SCRAM ---

fn rng() -> SystemRandom {
    SystemRandom::new()
}

fn nonce() -> Res<String> {
    let mut n = [0u8; 18];
    rng().fill(&mut n).map_err(|_| local("no randomness"))?;
    Ok(B64.encode(n))
}

fn scram_line(plus: bool, client_first: &[u8]) -> Vec<u8> {
    AuthRequest::Scram {
        plus,
        client_first: client_first.to_vec(),
    }
    .encode()
}

fn final_line(client_final: &[u8]) -> Vec<u8> {
    AuthRequest::Final {
        client_final: client_final.to_vec(),
    }
    .encode()
}

/// What a server-first-message says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerFirst {
    text: String,
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

/// Parses RFC 5802's server-first-message (`r=…,s=…,i=…`).
fn server_first(octets: &[u8]) -> Res<ServerFirst> {
    let bad = |why: &str| {
        violation(
            "AUTH-11",
            "a server-first-message of RFC 5802: r=NONCE,s=SALT,i=ITERATIONS",
            format!("{:?}: {why}", show(octets)),
        )
    };
    let text = std::str::from_utf8(octets).map_err(|_| bad("not UTF-8"))?;
    let mut parts = text.split(',');
    let mut next = |name: &str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(name))
            .map(str::to_owned)
    };
    let nonce = next("r=").ok_or_else(|| bad("no nonce first"))?;
    let salt = next("s=").ok_or_else(|| bad("no salt second"))?;
    let iterations = next("i=").ok_or_else(|| bad("no iteration count third"))?;
    let salt = B64
        .decode(salt)
        .map_err(|_| bad("the salt is not base64"))?;
    let iterations = iterations
        .parse::<u32>()
        .map_err(|_| bad("the iteration count is not a number"))?;
    Ok(ServerFirst {
        text: text.to_owned(),
        nonce,
        salt,
        iterations,
    })
}

/// A SCRAM exchange written by hand: any gs2 header, any client-first-message-bare, any
/// channel-binding data, with the proof computed as RFC 5802 says.
struct Hand {
    /// The gs2 header (`p=ferry-exporter,,`, `n,,`, `y,,`, …).
    header: String,
    /// client-first-message-bare.
    bare: String,
    /// What `c=` carries, decoded: the header, then the binding data.
    cbind: Vec<u8>,
    password: String,
}

impl Hand {
    /// A correct exchange over TLS for `who` on the channel `cb`, with `client_nonce`.
    fn bound(who: &Login, cb: &[u8; 32], client_nonce: &str) -> Hand {
        let header = "p=ferry-exporter,,".to_owned();
        let mut cbind = header.clone().into_bytes();
        cbind.extend_from_slice(cb);
        Hand {
            header,
            bare: format!("n={},r={client_nonce}", who.name),
            cbind,
            password: who.password.clone(),
        }
    }

    fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.header, self.bare).into_bytes()
    }

    /// The client-final-message for the server-first-message `sf`.
    fn client_final(&self, sf: &ServerFirst) -> Vec<u8> {
        let without_proof = format!("c={},r={}", B64.encode(&self.cbind), sf.nonce);
        let auth_message = format!("{},{},{without_proof}", self.bare, sf.text);
        let iterations = NonZeroU32::new(sf.iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &sf.salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof)).into_bytes()
    }
}

/// Runs a hand-made exchange that must be refused: `err 535` to the `auth`, or `more` and
/// `err 535` to the (correctly computed) `auth-final`. Returns the refusal line.
fn hand_refused(c: &mut Conn, req: &str, hand: &Hand, why: &str) -> Res<String> {
    c.send(req, &scram_line(true, &hand.client_first()))?;
    let want = format!("err 535, at once or after more ({why})");
    match answer(c, req, &want)? {
        (Answer::Err(e), shown) if e.code == wire_auth::AUTH_FAILED => Ok(shown),
        (Answer::More(sf), _) => {
            let sf = server_first(&sf)?;
            c.send(req, &final_line(&hand.client_final(&sf)))?;
            expect_refused(c, req, why)
        }
        (_, shown) => Err(violation(req, want, shown)),
    }
}

/// A hand-made exchange that must succeed (the control of the refused ones).
fn hand_accepted(c: &mut Conn, hand: &Hand, who: &Login) -> Res<()> {
    let req = "AUTH-11";
    c.send(req, &scram_line(true, &hand.client_first()))?;
    let sf = match answer(c, req, "more SERVER-FIRST")? {
        (Answer::More(sf), _) => server_first(&sf)?,
        (_, shown) => return Err(violation(req, "more SERVER-FIRST", shown)),
    };
    c.send(req, &final_line(&hand.client_final(&sf)))?;
    let want = format!("ok auth {} SERVER-FINAL", who.name);
    match answer(c, req, &want)? {
        (Answer::Ok { user, .. }, _) if user == who.name => Ok(()),
        (_, shown) => Err(violation(req, want, shown)),
    }
}

/// Logs in with `who`'s password through `ferry_auth`'s client; returns the server-first.
fn scram_login(c: &mut Conn, cb: &[u8; 32], who: &Login) -> Res<ServerFirst> {
    let req = "AUTH-11";
    let (mut x, first) = ClientExchange::start(who.name.as_str(), &who.password, Some(*cb), &rng())
        .map_err(local)?;
    let first = B64.decode(first).map_err(local)?;
    c.send(req, &scram_line(true, &first))?;
    let sf = match answer(c, req, "more SERVER-FIRST")? {
        (Answer::More(sf), _) => sf,
        (_, shown) => return Err(violation(req, "more SERVER-FIRST", shown)),
    };
    let parsed = server_first(&sf)?;
    ensure(
        parsed.iterations >= 4096,
        "AUTH-13",
        "an iteration count of at least 4096",
        || format!("i={}", parsed.iterations),
    )?;
    let last = x.step(&B64.encode(&sf)).map_err(|e| {
        violation(
            "AUTH-11",
            "a server-first-message that extends the client's nonce, with a salt and an \
             iteration count of 4096 to 10,000,000",
            format!("{:?}: {e}", show(&sf)),
        )
    })?;
    let last = B64.decode(last).map_err(local)?;
    c.send(req, &final_line(&last))?;
    let want = format!("ok auth {} SERVER-FINAL", who.name);
    let (user, server_final) = match answer(c, req, &want)? {
        (
            Answer::Ok {
                user,
                server_final: Some(v),
            },
            _,
        ) => (user, v),
        (_, shown) => return Err(violation(req, want, shown)),
    };
    ensure(user == who.name, req, &want, || format!("ok auth {user}"))?;
    x.finish(&B64.encode(&server_final)).map_err(|e| {
        violation(
            "AUTH-11",
            "a server-final-message v= with the server's signature (RFC 5802)",
            format!("{:?}: {e}", show(&server_final)),
        )
    })?;
    Ok(parsed)
}

/// A SCRAM exchange through `ferry_auth`'s client that must be refused (a wrong password, a
/// wrong binding): 535 to the `auth` or to the `auth-final`.
fn client_refused(
    c: &mut Conn,
    req: &str,
    user: &str,
    password: &str,
    cb: Option<[u8; 32]>,
    why: &str,
) -> Res<String> {
    let (mut x, first) = ClientExchange::start(user, password, cb, &rng()).map_err(local)?;
    let first = B64.decode(first).map_err(local)?;
    c.send(req, &scram_line(true, &first))?;
    let want = format!("err 535, at once or after more ({why})");
    match answer(c, req, &want)? {
        (Answer::Err(e), shown) if e.code == wire_auth::AUTH_FAILED => Ok(shown),
        (Answer::More(sf), _) => {
            let last = x.step(&B64.encode(&sf)).map_err(|e| {
                violation(
                    "AUTH-11",
                    "a server-first-message of RFC 5802",
                    format!("{:?}: {e}", show(&sf)),
                )
            })?;
            c.send(req, &final_line(&B64.decode(last).map_err(local)?))?;
            expect_refused(c, req, why)
        }
        (_, shown) => Err(violation(req, want, shown)),
    }
}

// ------------------------------------------------------------------ cases ---

fn auth_1_offer(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let (c, g) = Conn::open(&env.ep, env.deadline)?;
    let _ = c.close();
    let params = auth_params(&g);
    let [value] = params.as_slice() else {
        return Err(violation(
            "AUTH-1",
            "one auth= parameter with the mechanisms (ext lists auth)",
            format!("{} auth= parameters: {params:?}", params.len()),
        ));
    };
    let mechanisms = wire_auth::parse_param_value(value).unwrap_or_default();
    ensure(
        !mechanisms.is_empty(),
        "AUTH-1",
        "auth= listing at least one of ed25519, scram-sha-256-plus, scram-sha-256",
        || format!("auth={value}"),
    )?;
    ensure(
        !value.split(',').any(|m| m == "scram-sha-256"),
        "AUTH-11",
        "over TLS no scram-sha-256 in auth= (the bound scram-sha-256-plus only)",
        || format!("auth={value}"),
    )?;
    Ok(Done::PassWith(format!("auth={value}")))
}

fn auth_17_before(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-17";
    let (waited, eager) = (ctx.name("before-wait"), ctx.name("before-eager"));
    let (mut c, _) = env.open()?;
    c.send(req, b"dir\n")?;
    expect_code(&mut c, req, 530, "dir before auth")?;
    c.send(req, &get_line(0, &waited))?;
    expect_code(&mut c, req, 530, "get before auth")?;
    c.send(req, &put_line(3, PutMode::New, PutFlow::Wait, &waited))?;
    expect_code(&mut c, req, 530, "put wait before auth, instead of go")?;
    // An eager put: its payload is discarded (PUT-9) and the session goes on in step. The
    // payload holds what would be requests if it were read as lines.
    let data = b"dir\nget 0 x\n";
    let mut bytes = put_line(data.len() as u64, PutMode::New, PutFlow::Now, &eager);
    bytes.extend_from_slice(&payload_of(data));
    bytes.extend_from_slice(b"dir\n");
    c.send(req, &bytes)?;
    expect_code(&mut c, req, 530, "an eager put before auth")?;
    expect_code(
        &mut c,
        "PUT-9",
        530,
        "the dir after the eager put's payload, which is discarded, not read as requests",
    )?;
    c.close()?;
    // `version` is allowed before auth.
    let (mut c, cb) = env.open()?;
    c.send(req, b"version 1\n")?;
    match answer(&mut c, req, "ok version 1")? {
        (Answer::Other(Reply::VersionOk(v)), _) if v.get() == 1 => {}
        (_, shown) => return Err(violation(req, "ok version 1 (allowed before auth)", shown)),
    }
    // Nothing was stored by the refused puts.
    env.login(&mut c, &cb, &env.creds.all)?;
    for name in [&waited, &eager] {
        match c.get(req, 0, name)? {
            GetReply::Err(e) if e.code == Code::NOT_FOUND => {}
            other => {
                return Err(violation(
                    req,
                    format!("err 511 for {}: its put was refused with 530", show(name)),
                    other.show(),
                ));
            }
        }
    }
    c.close()?;
    Ok(Done::Pass)
}

fn auth_10_ed25519(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::Ed25519)?;
    for who in env.creds.users() {
        let (mut c, cb) = env.open()?;
        c.send("AUTH-10", &ed25519_line(&who.key, &cb, who.name.as_str()))?;
        expect_ok(&mut c, "AUTH-10", who)?;
        if who.rights.contains(ferry_auth::rights::Right::List) {
            c.dir("AUTH-18")?;
        }
        c.close()?;
    }
    Ok(Done::Pass)
}

fn auth_8_same_failure(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-8";
    let creds = &env.creds;
    let alice = &creds.all;
    let (mut c, cb) = env.open()?;
    let mut lines = Vec::new();
    let mut refuse = |c: &mut Conn, line: &[u8], why: &str| -> Res<()> {
        c.send(req, line)?;
        let l = expect_refused(c, "AUTH-10", why)?;
        lines.push((why.to_owned(), l));
        Ok(())
    };
    if env.offers(Mechanism::Ed25519) {
        let nobody = unknown_user(ctx);
        refuse(
            &mut c,
            &ed25519_line(&stranger()?, &cb, &nobody),
            "an unknown user with a valid signature",
        )?;
        refuse(
            &mut c,
            &ed25519_line(&creds.read_only.key, &cb, "alice"),
            "alice with bob's key, validly signed",
        )?;
        refuse(
            &mut c,
            &ed25519_line(&stranger()?, &cb, "alice"),
            "alice with a key nobody has, validly signed",
        )?;
        let (user, pubkey, sig) = fields(&ed25519_line(&alice.key, &cb, "alice"));
        let mut bad = B64.decode(&sig).map_err(local)?;
        bad[10] ^= 0x01;
        refuse(
            &mut c,
            &raw_ed25519_line(&user, &pubkey, &B64.encode(&bad)),
            "alice's key with one bit of the signature flipped",
        )?;
        let (_, _, for_bob) = fields(&ed25519_line(&alice.key, &cb, "bob"));
        refuse(
            &mut c,
            &raw_ed25519_line("alice", &pubkey, &for_bob),
            "alice's key with a signature of the proof for user bob",
        )?;
        refuse(
            &mut c,
            &ed25519_line(&alice.key, &[0; 32], "alice"),
            "alice's proof for the all-zero binding of a plain connection",
        )?;
    }
    if env.offers(Mechanism::ScramSha256Plus) {
        let l = client_refused(
            &mut c,
            req,
            "alice",
            "not alice's password",
            Some(cb),
            "alice with a wrong password",
        )?;
        lines.push(("alice with a wrong password".into(), l));
        let nobody = unknown_user(ctx);
        let l = client_refused(
            &mut c,
            req,
            &nobody,
            "a password",
            Some(cb),
            "an unknown user with a password",
        )?;
        lines.push(("an unknown user with a password".into(), l));
    }
    if lines.is_empty() {
        env.need(Mechanism::Ed25519)?;
    }
    same_lines(&lines)?;
    // The session is still usable: a correct login succeeds after the failures.
    env.login(&mut c, &cb, alice)?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_10_replay(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::Ed25519)?;
    let alice = &env.creds.all;
    let (mut first, cb_first) = env.open()?;
    let (mut second, cb_second) = env.open()?;
    ensure(
        cb_first != cb_second,
        "TLS-15",
        "each TLS connection its own channel binding",
        || "two connections with the same exporter value".to_owned(),
    )?;
    // What alice sent on the first connection, replayed on the second.
    let proof = ed25519_line(&alice.key, &cb_first, "alice");
    second.send("AUTH-10", &proof)?;
    expect_refused(
        &mut second,
        "AUTH-10",
        "a proof signed for another connection's channel binding",
    )?;
    second.send("AUTH-17", b"dir\n")?;
    expect_code(
        &mut second,
        "AUTH-10",
        530,
        "dir: the replayed proof logged nobody in",
    )?;
    first.send("AUTH-10", &proof)?;
    expect_ok(&mut first, "AUTH-10", alice)?;
    first.close()?;
    second.close()?;
    Ok(Done::Pass)
}

/// `field` (standard base64 with padding) with the unused bits of its last character set.
fn unused_bits_set(field: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = field.trim_end_matches('=');
    let pad = field.len() - data.len();
    let mut bytes = data.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut()
        && let Some(v) = ALPHABET.iter().position(|a| a == last)
    {
        // One pad: 2 unused bits; two pads: 4.
        let unused = if pad == 1 { 0b11 } else { 0b1111 };
        *last = ALPHABET[(v | unused) & 63];
    }
    format!("{}{}", String::from_utf8_lossy(&bytes), "=".repeat(pad))
}

fn auth_10_canonical(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::Ed25519)?;
    let req = "AUTH-10";
    let alice = &env.creds.all;
    let (mut c, cb) = env.open()?;
    let (user, pubkey, sig) = fields(&ed25519_line(&alice.key, &cb, "alice"));
    let variants = [
        (
            raw_ed25519_line(&user, pubkey.trim_end_matches('='), &sig),
            "PUBKEY without its padding",
        ),
        (
            raw_ed25519_line(&user, &unused_bits_set(&pubkey), &sig),
            "PUBKEY with its unused bits set",
        ),
        (
            raw_ed25519_line(&user, &pubkey, &unused_bits_set(&sig)),
            "SIG with its unused bits set",
        ),
    ];
    for (line, why) in variants {
        c.send(req, &line)?;
        let want = format!("err 535 (or 500: not the grammar's canonical b64) for {why}");
        match answer(&mut c, req, &want)? {
            (Answer::Err(e), _) if e.code == wire_auth::AUTH_FAILED || e.code == Code::SYNTAX => {}
            (_, shown) => return Err(violation(req, want, shown)),
        }
    }
    c.send(req, &raw_ed25519_line(&user, &pubkey, &sig))?;
    expect_ok(&mut c, req, alice)?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_4_names(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::Ed25519)?;
    let alice = &env.creds.all;
    let (mut c, cb) = env.open()?;
    c.send("AUTH-4", &ed25519_line(&alice.key, &cb, "ALICE"))?;
    expect_refused(
        &mut c,
        "AUTH-4",
        "ALICE with alice's key, signed for ALICE: another name",
    )?;
    c.send("AUTH-4", &ed25519_line(&alice.key, &cb, "anonymous"))?;
    let want = "err 535 (or 500: anonymous is outside the grammar's user)";
    match answer(&mut c, "AUTH-4", want)? {
        (Answer::Err(e), _) if e.code == wire_auth::AUTH_FAILED || e.code == Code::SYNTAX => {}
        (_, shown) => return Err(violation("AUTH-4", want, shown)),
    }
    c.send("AUTH-10", &ed25519_line(&alice.key, &cb, "alice"))?;
    expect_ok(&mut c, "AUTH-10", alice)?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_11_scram(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::ScramSha256Plus)?;
    let mut seen = Vec::new();
    for who in [&env.creds.all, &env.creds.read_only] {
        let (mut c, cb) = env.open()?;
        let sf = scram_login(&mut c, &cb, who)?;
        seen.push(format!("{}: i={}", who.name, sf.iterations));
        c.dir("AUTH-18")?;
        c.close()?;
    }
    Ok(Done::PassWith(seen.join(", ")))
}

fn auth_11_binding(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::ScramSha256Plus)?;
    let req = "AUTH-11";
    let alice = &env.creds.all;
    let (mut c, cb) = env.open()?;
    // The control: a correct exchange written by hand logs in (on a connection of its own).
    {
        let (mut k, kcb) = env.open()?;
        hand_accepted(&mut k, &Hand::bound(alice, &kcb, &nonce()?), alice)?;
        k.close()?;
    }
    let mut lines = Vec::new();
    // The right password, the binding stripped: `n,,` (ferry_auth's client, unbound).
    lines.push(client_refused(
        &mut c,
        req,
        "alice",
        &alice.password,
        None,
        "gs2 header n,, over TLS (binding stripped)",
    )?);
    // `y,,`: "I could bind, but think the server cannot".
    let mut y = Hand::bound(alice, &cb, &nonce()?);
    y.header = "y,,".into();
    y.cbind = b"y,,".to_vec();
    lines.push(hand_refused(&mut c, req, &y, "gs2 header y,, over TLS")?);
    // Another channel-binding type, with this connection's data.
    let mut other = Hand::bound(alice, &cb, &nonce()?);
    other.header = "p=tls-exporter,,".into();
    other.cbind = [b"p=tls-exporter,,".as_slice(), &cb].concat();
    lines.push(hand_refused(
        &mut c,
        req,
        &other,
        "gs2 header p=tls-exporter,, (not ferry-exporter)",
    )?);
    // The right header, the binding data of another connection.
    let (elsewhere, cb_elsewhere) = env.open()?;
    lines.push(client_refused(
        &mut c,
        req,
        "alice",
        &alice.password,
        Some(cb_elsewhere),
        "c= with another connection's channel binding",
    )?);
    let _ = elsewhere.close();
    let lines: Vec<(String, String)> = lines
        .into_iter()
        .map(|l| ("a stripped or foreign binding".to_owned(), l))
        .collect();
    same_lines(&lines)?;
    // The session goes on: the right exchange logs in.
    scram_login(&mut c, &cb, alice)?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_12_extensions(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::ScramSha256Plus)?;
    let req = "AUTH-12";
    let alice = &env.creds.all;
    let (mut c, cb) = env.open()?;
    let mut m = Hand::bound(alice, &cb, &nonce()?);
    m.bare = format!("m=ferry-conform,{}", m.bare);
    hand_refused(
        &mut c,
        req,
        &m,
        "a mandatory extension m= in the client-first",
    )?;
    let mut a = Hand::bound(alice, &cb, &nonce()?);
    a.header = "p=ferry-exporter,a=alice,".into();
    a.cbind = [a.header.as_bytes(), &cb].concat();
    hand_refused(
        &mut c,
        req,
        &a,
        "an authorization identity a=alice (the user itself)",
    )?;
    // The control, on the same session: the same exchange without them logs in.
    hand_accepted(&mut c, &Hand::bound(alice, &cb, &nonce()?), alice)?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_14_unknown_user(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    env.need(Mechanism::ScramSha256Plus)?;
    let req = "AUTH-14";
    let nobody = unknown_user(ctx);
    // What real users get: the `more` of alice and bob (the exchanges are left unanswered:
    // the connection is dropped).
    let mut real = Vec::new();
    for who in [&env.creds.all, &env.creds.read_only] {
        let (mut c, cb) = env.open()?;
        let hand = Hand::bound(who, &cb, &nonce()?);
        c.send(req, &scram_line(true, &hand.client_first()))?;
        match answer(&mut c, req, "more SERVER-FIRST")? {
            (Answer::More(sf), _) => real.push(server_first(&sf)?),
            (_, shown) => return Err(violation("AUTH-11", "more SERVER-FIRST", shown)),
        }
    }
    let mut seen: Vec<ServerFirst> = Vec::new();
    for attempt in 1..=2 {
        let (mut c, cb) = env.open()?;
        let client_nonce = nonce()?;
        let hand = Hand {
            header: "p=ferry-exporter,,".into(),
            bare: format!("n={nobody},r={client_nonce}"),
            cbind: [b"p=ferry-exporter,,".as_slice(), &cb].concat(),
            password: "a password".into(),
        };
        c.send(req, &scram_line(true, &hand.client_first()))?;
        let want = format!("more SERVER-FIRST for the unknown user {nobody} (attempt {attempt})");
        let sf = match answer(&mut c, req, &want)? {
            (Answer::More(sf), _) => server_first(&sf)?,
            (_, shown) => return Err(violation(req, want, shown)),
        };
        ensure(
            sf.nonce.len() > client_nonce.len() && sf.nonce.starts_with(&client_nonce),
            req,
            "a nonce that extends the client's, as for a real user",
            || format!("r={} for the client's {client_nonce}", sf.nonce),
        )?;
        ensure(
            real.iter()
                .any(|r| r.iterations == sf.iterations && r.salt.len() == sf.salt.len()),
            req,
            format!(
                "a salt and iteration count like a real user's ({})",
                real.iter()
                    .map(|r| format!("{} octets of salt, i={}", r.salt.len(), r.iterations))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            || format!("{} octets of salt, i={}", sf.salt.len(), sf.iterations),
        )?;
        c.send(req, &final_line(&hand.client_final(&sf)))?;
        expect_refused(&mut c, req, "auth-final of an unknown user")?;
        c.close()?;
        seen.push(sf);
    }
    ensure(
        seen[0].salt == seen[1].salt && seen[0].iterations == seen[1].iterations,
        req,
        "the same salt and iteration count at every attempt for the same unknown name",
        || {
            format!(
                "s={} i={}, then s={} i={}",
                B64.encode(&seen[0].salt),
                seen[0].iterations,
                B64.encode(&seen[1].salt),
                seen[1].iterations
            )
        },
    )?;
    Ok(Done::Pass)
}

fn auth_6_exchange(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-6";
    let alice = &env.creds.all;
    let (mut c, cb) = env.open()?;
    c.send(req, b"auth kerberos-v5 alice\n")?;
    expect_code(&mut c, req, 503, "a mechanism the server did not list")?;
    let unbound = format!("n,,n=alice,r={}", nonce()?);
    c.send(req, &scram_line(false, unbound.as_bytes()))?;
    expect_code(
        &mut c,
        req,
        503,
        "scram-sha-256, which is not offered over TLS",
    )?;
    c.send(req, &final_line(b"c=biws,r=x,p=eA=="))?;
    expect_code(&mut c, req, 500, "auth-final that answers no more")?;
    if env.offers(Mechanism::ScramSha256Plus) {
        let hand = Hand::bound(alice, &cb, &nonce()?);
        c.send(req, &scram_line(true, &hand.client_first()))?;
        let sf = match answer(&mut c, req, "more SERVER-FIRST")? {
            (Answer::More(sf), _) => server_first(&sf)?,
            (_, shown) => return Err(violation(req, "more SERVER-FIRST", shown)),
        };
        // Another line where auth-final is expected: 535 ends the exchange, then the line
        // is served as usual (unauthenticated: 530).
        c.send(req, b"dir\n")?;
        expect_refused(&mut c, req, "dir where auth-final was expected")?;
        expect_code(&mut c, req, 530, "the dir itself, served unauthenticated")?;
        // The exchange is over: its auth-final now answers no more.
        c.send(req, &final_line(&hand.client_final(&sf)))?;
        expect_code(&mut c, req, 500, "auth-final after the exchange ended")?;
    }
    env.login(&mut c, &cb, alice)?;
    c.dir(req)?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_7_once(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-7";
    let (alice, bob) = (&env.creds.all, &env.creds.read_only);
    let (mut c, cb) = env.open()?;
    env.login(&mut c, &cb, alice)?;
    if env.offers(Mechanism::Ed25519) {
        c.send(req, &ed25519_line(&bob.key, &cb, "bob"))?;
        expect_refused(&mut c, req, "a second auth, as bob, with bob's valid proof")?;
        c.send(req, &ed25519_line(&alice.key, &cb, "alice"))?;
        expect_refused(&mut c, req, "a second auth, as alice again")?;
    } else {
        client_refused(
            &mut c,
            req,
            "bob",
            &bob.password,
            Some(cb),
            "a second auth, as bob, with bob's password",
        )?;
    }
    // Still alice: she may create, bob may not.
    let name = ctx.name("still-alice");
    c.put_ok(req, &name, PutMode::New, PutFlow::Wait, b"alice")?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_19_rights(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-19";
    let (bob, dave) = (&env.creds.read_only, &env.creds.drop_box);
    // bob: list, read; no create.
    let mut c = env.session_as(bob)?;
    let name = ctx.name("bob");
    match c.put(req, &name, PutMode::New, PutFlow::Wait, b"bob")? {
        Reply::Err(e) if e.code == wire_auth::NOT_PERMITTED => {}
        other => {
            return Err(violation(
                req,
                "err 550 to bob's put wait (no create right), before go",
                show_reply(&other),
            ));
        }
    }
    match c.put(req, &name, PutMode::New, PutFlow::Now, b"bob's eager")? {
        Reply::Err(e) if e.code == wire_auth::NOT_PERMITTED => {}
        other => {
            return Err(violation(
                req,
                "err 550 to bob's eager put (no create right)",
                show_reply(&other),
            ));
        }
    }
    // In step after the discarded payload; bob may list and read.
    c.dir("PUT-9")?;
    match c.get(req, 0, &name)? {
        GetReply::Err(e) if e.code == Code::NOT_FOUND => {}
        other => {
            return Err(violation(
                req,
                "err 511 to bob's get of a name his refused puts did not store",
                other.show(),
            ));
        }
    }
    c.close()?;
    // dave: create only.
    let mut c = env.session_as(dave)?;
    c.send(req, b"dir\n")?;
    expect_code(&mut c, req, 550, "dave's dir (no list right)")?;
    let dropped = ctx.name("dropped");
    c.send(req, &get_line(0, &dropped))?;
    let absent = expect_code(
        &mut c,
        req,
        550,
        "dave's get of an absent file (no read right)",
    )?;
    c.put_ok(
        req,
        &dropped,
        PutMode::New,
        PutFlow::Wait,
        b"for the drop box",
    )?;
    c.send(req, &get_line(0, &dropped))?;
    let present = expect_code(
        &mut c,
        req,
        550,
        "dave's get of the file he stored (no read right)",
    )?;
    ensure(
        absent == present,
        req,
        "the same 550 for a file that exists and one that does not",
        || format!("{absent:?}, then {present:?}"),
    )?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_19_replace(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-19";
    let (alice, carol, dave) = (&env.creds.all, &env.creds.no_replace, &env.creds.drop_box);
    // carol: list, read, create; no replace.
    let mut c = env.session_as(carol)?;
    let (x, y) = (ctx.name("carol-x"), ctx.name("carol-y"));
    c.put_ok(req, &x, PutMode::New, PutFlow::Wait, b"one")?;
    for (flow, data) in [(PutFlow::Wait, b"two".as_slice()), (PutFlow::Now, b"three")] {
        match c.put(req, &x, PutMode::Replace, flow, data)? {
            Reply::Err(e) if e.code == Code::EXISTS => {}
            other => {
                return Err(violation(
                    req,
                    "err 512: carol's put replace of an existing name is a put new",
                    show_reply(&other),
                ));
            }
        }
    }
    expect_content(&mut c, req, &x, b"one")?;
    c.put_ok(req, &y, PutMode::Replace, PutFlow::Wait, b"new")?;
    expect_content(&mut c, req, &y, b"new")?;
    c.close()?;
    // dave: create only.
    let mut c = env.session_as(dave)?;
    let z = ctx.name("dave-z");
    c.put_ok(req, &z, PutMode::New, PutFlow::Wait, b"one")?;
    match c.put(req, &z, PutMode::Replace, PutFlow::Now, b"two")? {
        Reply::Err(e) if e.code == Code::EXISTS => {}
        other => {
            return Err(violation(
                req,
                "err 512: dave's eager put replace of an existing name is a put new",
                show_reply(&other),
            ));
        }
    }
    c.close()?;
    // alice, with the right: replaced.
    let mut c = env.session_as(alice)?;
    let w = ctx.name("alice-w");
    c.put_ok(req, &w, PutMode::New, PutFlow::Wait, b"one")?;
    c.put_ok(req, &w, PutMode::Replace, PutFlow::Wait, b"two")?;
    expect_content(&mut c, req, &w, b"two")?;
    c.close()?;
    Ok(Done::Pass)
}

fn auth_18_isolation(ctx: &mut Ctx<'_>) -> Res<Done> {
    let env = env(ctx)?;
    let req = "AUTH-18";
    let (alice, bob, carol) = (&env.creds.all, &env.creds.read_only, &env.creds.no_replace);
    let secret = ctx.name("secret");
    let mut c = env.session_as(alice)?;
    c.put_ok(req, &secret, PutMode::New, PutFlow::Wait, b"alice's")?;
    c.close()?;
    // bob neither sees nor reaches it.
    let mut c = env.session_as(bob)?;
    let listing = c.dir(req)?;
    ensure(
        !listing
            .iter()
            .any(|e| e.name.as_bytes() == secret.as_slice()),
        req,
        format!("bob's listing without alice's {}", show(&secret)),
        || "it lists alice's file".to_owned(),
    )?;
    match c.get(req, 0, &secret)? {
        GetReply::Err(e) if e.code == Code::NOT_FOUND => {}
        other => {
            return Err(violation(
                req,
                format!("err 511 to bob's get of alice's {}", show(&secret)),
                other.show(),
            ));
        }
    }
    // Nor through a path: names are single path components (section 11), in every folder.
    let mut climb = b"../alice/".to_vec();
    climb.extend_from_slice(&secret);
    if let GetReply::Ok { .. } = c.get(req, 0, &climb)? {
        return Err(violation(
            req,
            format!("an err to bob's get of {} (510: not a name)", show(&climb)),
            "ok get: a file outside bob's folder".to_owned(),
        ));
    }
    c.close()?;
    // carol's folder is another: the same name is new there.
    let mut c = env.session_as(carol)?;
    c.put_ok(req, &secret, PutMode::New, PutFlow::Wait, b"carol's own")?;
    expect_content(&mut c, req, &secret, b"carol's own")?;
    c.close()?;
    // alice's file is unchanged, listed once.
    let mut c = env.session_as(alice)?;
    expect_content(&mut c, req, &secret, b"alice's")?;
    let listing = c.dir(req)?;
    let mine: Vec<_> = listing
        .iter()
        .filter(|e| e.name.as_bytes() == secret.as_slice())
        .map(|e| e.size)
        .collect();
    ensure(
        mine == [7],
        req,
        "alice's listing shows her file once, 7 octets",
        || format!("sizes {mine:?}"),
    )?;
    c.close()?;
    Ok(Done::Pass)
}

fn tree_13_rights(ctx: &mut Ctx<'_>) -> Res<Done> {
    use super::tree::{line, list_ok, ok, refused, rename_line};
    use ferry_wire::tree::TreeReply;
    let env = env(ctx)?;
    let req = "TREE-13";
    let (mut c, g) = Conn::open(&env.ep, env.deadline)?;
    if !ferry_wire::tree::offered(&g) {
        return Err(unimplemented(
            "needs the server with users to list `tree` in ext (section 17)",
        ));
    }
    let cb = c
        .channel_binding()
        .ok_or_else(|| local("no TLS channel binding for the runner's connection"))?;
    let x = String::from_utf8_lossy(&ctx.name("t")).into_owned();
    let (f, sub, moved) = (format!("{x}/f"), format!("{x}/sub"), format!("{x}-moved"));
    // Before a login: 530 (AUTH-17), the path not looked at.
    refused(&mut c, req, b"list - .\n", 530)?;
    refused(&mut c, req, &line("mkdir", &x), 530)?;
    refused(&mut c, req, &line("delete", &f), 530)?;
    // alice has every right.
    let alice = &env.creds.all;
    env.login(&mut c, &cb, alice)?;
    c.send(req, b"enable tree\n")?;
    super::tree::expect_ok(&mut c, req, &super::tree::enabled_reply(), "enable tree")?;
    ok(&mut c, req, &line("mkdir", &x), TreeReply::Mkdir)?;
    ok(&mut c, req, &line("mkdir", &sub), TreeReply::Mkdir)?;
    super::tree::put(&mut c, &f, b"alice's")?;
    c.close()?;
    // bob: list and read only; carol: no delete, no rename; dave: create only. Each in a
    // folder of its own (AUTH-18): the paths do not exist there, and 550 comes first.
    let (bob, carol, dave) = (
        &env.creds.read_only,
        &env.creds.no_replace,
        &env.creds.drop_box,
    );
    let mut c = env.session_as(bob)?;
    list_ok(&mut c, req, "-", ".")?;
    for l in [
        line("mkdir", &x),
        line("rmdir", &sub),
        line("delete", &f),
        rename_line(&x, &moved),
    ] {
        refused(&mut c, req, &l, 550)?;
    }
    c.close()?;
    let mut c = env.session_as(carol)?;
    let mine = format!("{x}-carol");
    ok(&mut c, req, &line("mkdir", &mine), TreeReply::Mkdir)?;
    for l in [
        line("rmdir", &mine),
        line("delete", &f),
        rename_line(&mine, &moved),
    ] {
        refused(&mut c, req, &l, 550)?;
    }
    c.close()?;
    let mut c = env.session_as(dave)?;
    refused(&mut c, req, b"list - .\n", 550)?;
    refused(&mut c, req, &super::tree::list_line("recursive", &x), 550)?;
    let mine = format!("{x}-dave");
    ok(&mut c, req, &line("mkdir", &mine), TreeReply::Mkdir)?;
    refused(&mut c, req, &line("rmdir", &mine), 550)?;
    c.close()?;
    // alice's tree is as she left it, and she may remove it.
    let mut c = env.session_as(alice)?;
    let entries = list_ok(&mut c, req, "recursive", &x)?;
    let shapes: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    ensure(
        shapes == ["f", "sub"],
        req,
        format!("alice's {x:?} unchanged: [\"f\", \"sub\"]"),
        || format!("{shapes:?}"),
    )?;
    ok(&mut c, req, &line("delete", &f), TreeReply::Delete)?;
    ok(&mut c, req, &rename_line(&x, &moved), TreeReply::Rename)?;
    ok(
        &mut c,
        req,
        &line("rmdir", &format!("{moved}/sub")),
        TreeReply::Rmdir,
    )?;
    ok(&mut c, req, &line("rmdir", &moved), TreeReply::Rmdir)?;
    c.close()?;
    Ok(Done::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_bits_make_another_spelling_of_the_same_octets() {
        let key = [7u8; 32];
        let canonical = B64.encode(key);
        let odd = unused_bits_set(&canonical);
        assert_ne!(odd, canonical);
        assert_eq!(odd.len(), canonical.len());
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        assert_eq!(lenient.decode(&odd).expect("lenient"), key);
        assert!(B64.decode(&odd).is_err());
        let sig = B64.encode([9u8; 64]);
        assert_eq!(
            lenient.decode(unused_bits_set(&sig)).expect("sig"),
            [9u8; 64]
        );
    }

    /// RFC 7677's example through the hand-made exchange (no binding: `n,,`).
    #[test]
    fn the_hand_made_proof_is_rfc_7677s() {
        let hand = Hand {
            header: "n,,".into(),
            bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            cbind: b"n,,".to_vec(),
            password: "pencil".into(),
        };
        let sf = server_first(
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        )
        .expect("server-first");
        assert_eq!(
            String::from_utf8(hand.client_final(&sf)).expect("text"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
    }
}
