//! # SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, bound to ferry's TLS channel
//!
//! Password authentication of the `auth` extension (spec section 16): the Salted Challenge
//! Response Authentication Mechanism of [RFC 5802] with SHA-256 ([RFC 7677]), and the stored
//! form of a password verifier of [RFC 5803]. The client proves it knows the password without
//! sending it in a reusable form; the server proves it knows the verifier (mutual
//! authentication); the server stores only [`StoredPassword`] (salt, iteration count,
//! StoredKey, ServerKey), never the password.
//!
//! Sans-IO: [`ServerExchange`] and [`ClientExchange`] are state machines that take and return
//! the base64 tokens of ferry's `auth scram-sha-256-plus` / `more` / `auth-final` / `ok auth`
//! lines and do no I/O and read no clock; randomness (salts, nonces) comes from the caller's
//! [`SecureRandom`] (ring's `SystemRandom` in production).
//!
//! ```text
//! client                                         server
//! ClientExchange::start  -- client-first -->     ServerExchange::start (looks the user up)
//!                        <-- server-first --
//! ClientExchange::step   -- client-final -->     ServerExchange::finish (checks the proof)
//!                        <-- server-final --     (or a Refusal: `err 535 auth-failed`)
//! ClientExchange::finish (checks the server's signature)
//! ```
//!
//! ## Channel binding
//!
//! Over TLS the exchange is SCRAM-SHA-256-PLUS with the channel-binding type
//! [`CHANNEL_BINDING_NAME`] (`ferry-exporter`) whose data is the 32-octet exporter value of
//! spec TLS-15 (`ferry_tls::channel_binding`): the gs2 header is `p=ferry-exporter,,` and the
//! client-final's `c=` carries base64(gs2 header || binding), so an exchange relayed by a
//! machine in the middle (two TLS sessions, two exporter values) fails. On a plain session
//! (only when the operator allows it, for loopback tests) the exchange is SCRAM-SHA-256 with
//! the gs2 header `n,,` and nothing is bound.
//!
//! ## Deviations from RFC 5802 and what ferry adds
//!
//! - The only gs2 headers are `p=ferry-exporter,,` over TLS and `n,,` on a plain session: a
//!   client offering `n` or `y` over TLS is refused (no downgrade), as is `p=` on a plain
//!   session. No authorization identity (`a=`): refused.
//! - No extensions: `m=` and any attribute after the nonce (client-first, server-first) or
//!   between the nonce and the proof (client-final) are refused, by both sides.
//! - User names follow ferry's USER grammar (1 to 64 ASCII letters, digits, `.`, `_`, `-`;
//!   `anonymous` is reserved) and are still escaped as RFC 5802 says (`=2C`, `=3D`).
//! - Iteration counts: at least [`MIN_ITERATIONS`] (RFC 7677) and at most
//!   [`MAX_ITERATIONS`], on both sides; salts of a [`StoredPassword`] are at least
//!   [`SALT_LEN`] octets.
//! - Nonces are the base64 of [`NONCE_LEN`] random octets on each side.
//! - Messages are capped: a base64 token longer than [`MAX_TOKEN_LEN`] is refused unread.
//! - A failed exchange on the server is one opaque [`Refusal`] (the wire says only
//!   `err 535 auth-failed`); its [`RefusalReason`] is for the server's log. The server never
//!   sends an `e=` server-final; the client still understands one.
//! - An unknown user gets a server-first like a real one (a salt derived from
//!   HMAC(server secret, user), [`DEFAULT_ITERATIONS`]) and is refused at the final step, as a
//!   wrong password is.
//!
//! ## Password normalisation
//!
//! Passwords are UTF-8 and prepared with SASLprep ([RFC 4013], the `stringprep` crate), as
//! RFC 5802 asks, on both sides ([`normalize_password`]); a password SASLprep prohibits
//! (control characters, unassigned code points, bad bidirectional text) or that prepares to
//! nothing is refused with a clear error.
//!
//! [RFC 4013]: https://www.rfc-editor.org/rfc/rfc4013
//! [RFC 5802]: https://www.rfc-editor.org/rfc/rfc5802
//! [RFC 5803]: https://www.rfc-editor.org/rfc/rfc5803
//! [RFC 7677]: https://www.rfc-editor.org/rfc/rfc7677

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SecureRandom;
use ring::{digest, hmac, pbkdf2};
use zeroize::{Zeroize, Zeroizing};

/// The channel-binding type name in the gs2 header over TLS (`p=ferry-exporter`).
pub const CHANNEL_BINDING_NAME: &str = "ferry-exporter";

/// The smallest iteration count accepted anywhere (RFC 7677, section 4).
pub const MIN_ITERATIONS: u32 = 4096;

/// The largest iteration count accepted anywhere: a client refuses a server asking for more
/// (seconds of work per login is a denial of service, not security), and a password is not
/// stored with more.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// The iteration count of new passwords (`ferry user add`) and of the made-up answer to an
/// unknown user.
///
/// Measured on the development machine (AMD EPYC, 2 cores, release build, ring 0.17.14,
/// best of 5, machine otherwise quiet): PBKDF2-HMAC-SHA-256 costs about 0.2 ms per 1000
/// iterations — 4096 in 0.8 ms, 350,000 in 71 ms, 400,000 in 80 ms, 450,000 in 91 ms (with
/// both cores busy with builds, 400,000 took 103 ms) — so 400,000 costs about 80 ms, in the
/// 50–100 ms a login may take on the client (the server never runs PBKDF2 on a login:
/// only `ferry user add`/`passwd` do). A debug build is about 17 times slower.
pub const DEFAULT_ITERATIONS: u32 = 400_000;

/// The length in octets of the salt [`StoredPassword::new`] draws (the least a stored
/// password may have).
pub const SALT_LEN: usize = 16;

/// The longest salt accepted (stored or from a server), in octets.
pub const MAX_SALT_LEN: usize = 64;

/// The number of random octets in each side's nonce (sent as base64, 24 characters).
pub const NONCE_LEN: usize = 18;

/// The longest base64 token either side reads: ferry's lines are at most 4096 octets, so no
/// token in one can be longer.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A TLS channel-binding value (spec TLS-15): 32 octets.
pub type ChannelBinding = [u8; 32];

const KEY_LEN: usize = digest::SHA256_OUTPUT_LEN;
const SCHEME: &str = "SCRAM-SHA-256$";
const GS2_PLAIN: &str = "n,,";

// ---------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------

/// Why a password, or the parameters of a new [`StoredPassword`], cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The password is empty (or SASLprep maps all of it to nothing).
    #[error("the password is empty")]
    Empty,
    /// SASLprep (RFC 4013) prohibits a character of the password.
    #[error(
        "the password contains a character SASLprep (RFC 4013) prohibits (a control \
         character, an unassigned code point or mixed-direction text)"
    )]
    Prohibited,
    /// The iteration count is below [`MIN_ITERATIONS`] or above [`MAX_ITERATIONS`].
    #[error("the iteration count {0} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(u32),
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Prepares a password as SCRAM asks (SASLprep, RFC 4013): what both sides feed to PBKDF2.
///
/// The result is wiped from memory when dropped.
pub fn normalize_password(password: &str) -> Result<Zeroizing<String>, PasswordError> {
    let prepared = stringprep::saslprep(password).map_err(|_| PasswordError::Prohibited)?;
    let prepared = Zeroizing::new(prepared.into_owned());
    if prepared.is_empty() {
        return Err(PasswordError::Empty);
    }
    Ok(prepared)
}

fn check_iterations(iterations: u32) -> Result<NonZeroU32, PasswordError> {
    match NonZeroU32::new(iterations) {
        Some(n) if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) => Ok(n),
        _ => Err(PasswordError::Iterations(iterations)),
    }
}

/// The keys RFC 5802 derives from a salted password.
struct Keys {
    client_key: [u8; KEY_LEN],
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.client_key.zeroize();
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

/// SaltedPassword := Hi(Normalize(password), salt, i); ClientKey, StoredKey, ServerKey.
fn derive_keys(prepared: &str, salt: &[u8], iterations: NonZeroU32) -> Keys {
    let mut salted = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        prepared.as_bytes(),
        &mut salted[..],
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted[..]);
    let client_key = to_array(hmac::sign(&key, b"Client Key").as_ref());
    let server_key = to_array(hmac::sign(&key, b"Server Key").as_ref());
    let stored_key = to_array(digest::digest(&digest::SHA256, &client_key).as_ref());
    Keys {
        client_key,
        stored_key,
        server_key,
    }
}

fn to_array(bytes: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(bytes);
    out
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    to_array(ctx.sign().as_ref())
}

/// A password verifier as the server stores it (RFC 5802's StoredKey and ServerKey with their
/// salt and iteration count), never the password itself.
///
/// Its text form is RFC 5803's, `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64
/// StoredKey>:<base64 ServerKey>` ([`Display`](fmt::Display), [`FromStr`], and serde as that
/// string), the form PostgreSQL also uses. The keys are wiped from memory when dropped and
/// left out of [`Debug`](fmt::Debug).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl StoredPassword {
    /// Derives the verifier of `password` (prepared with [`normalize_password`]) with
    /// `iterations` rounds of PBKDF2 (at least [`MIN_ITERATIONS`], at most
    /// [`MAX_ITERATIONS`]; [`DEFAULT_ITERATIONS`] costs about 80 ms) and a fresh random salt
    /// of [`SALT_LEN`] octets.
    pub fn new(
        password: &str,
        iterations: u32,
        rng: &dyn SecureRandom,
    ) -> Result<Self, PasswordError> {
        let mut salt = vec![0u8; SALT_LEN];
        rng.fill(&mut salt).map_err(|_| PasswordError::Random)?;
        Self::with_salt(password, iterations, salt)
    }

    /// [`new`](Self::new) with a given salt (tests, the RFC's vectors).
    fn with_salt(password: &str, iterations: u32, salt: Vec<u8>) -> Result<Self, PasswordError> {
        let iterations = check_iterations(iterations)?;
        let prepared = normalize_password(password)?;
        let keys = derive_keys(&prepared, &salt, iterations);
        Ok(StoredPassword {
            iterations,
            salt,
            stored_key: keys.stored_key,
            server_key: keys.server_key,
        })
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations.get()
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }
}

impl Drop for StoredPassword {
    fn drop(&mut self) {
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredPassword")
            .field("iterations", &self.iterations)
            .field("salt", &B64.encode(&self.salt))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// A text that is not a stored SCRAM-SHA-256 password in RFC 5803's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a stored SCRAM-SHA-256 password: {reason} (the form is \
     SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>)"
)]
pub struct ParseStoredPasswordError {
    reason: String,
}

impl ParseStoredPasswordError {
    fn new(reason: impl Into<String>) -> Self {
        ParseStoredPasswordError {
            reason: reason.into(),
        }
    }
}

impl FromStr for StoredPassword {
    type Err = ParseStoredPasswordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn err(reason: impl Into<String>) -> ParseStoredPasswordError {
            ParseStoredPasswordError::new(reason)
        }
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| err("it does not start with `SCRAM-SHA-256$`"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or_else(|| err("no `$` between the parameters and the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| err("no `:` between the iteration count and the salt"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or_else(|| err("no `:` between StoredKey and ServerKey"))?;
        let iterations = parse_count(iterations)
            .and_then(|n| check_iterations(n).ok())
            .ok_or_else(|| {
                err(format!(
                    "the iteration count `{}` is not a number in {MIN_ITERATIONS}..={MAX_ITERATIONS}",
                    iterations.escape_debug()
                ))
            })?;
        let salt = B64
            .decode(salt)
            .map_err(|_| err("the salt is not base64"))?;
        if !(SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
            return Err(err(format!(
                "the salt has {} octets, not {SALT_LEN} to {MAX_SALT_LEN}",
                salt.len()
            )));
        }
        let key = |text: &str, name: &str| -> Result<[u8; KEY_LEN], ParseStoredPasswordError> {
            let bytes = Zeroizing::new(
                B64.decode(text)
                    .map_err(|_| err(format!("{name} is not base64")))?,
            );
            if bytes.len() != KEY_LEN {
                return Err(err(format!(
                    "{name} has {} octets, not {KEY_LEN}",
                    bytes.len()
                )));
            }
            Ok(to_array(&bytes))
        };
        Ok(StoredPassword {
            iterations,
            salt,
            stored_key: key(stored_key, "StoredKey")?,
            server_key: key(server_key, "ServerKey")?,
        })
    }
}

impl serde::Serialize for StoredPassword {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for StoredPassword {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A decimal count as SCRAM and RFC 5803 write it: ASCII digits, no sign, no leading zero.
fn parse_count(text: &str) -> Option<u32> {
    if text.is_empty()
        || text.len() > 10
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Message syntax shared by both sides
// ---------------------------------------------------------------------------------------

/// ferry's USER grammar: 1 to 64 ASCII letters, digits, `.`, `_`, `-`; not `anonymous`.
fn is_user_name(name: &str) -> bool {
    ferry_wire::auth::UserName::new(name).is_ok()
}

/// RFC 5802 saslname: `=` as `=3D`, `,` as `=2C`.
fn escape_user(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The inverse of [`escape_user`]; `None` for a `=` not followed by `2C` or `3D`.
fn unescape_user(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(r) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = r;
        } else if let Some(r) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = r;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E (visible ASCII but `,`); at least one.
fn is_nonce(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| matches!(b, 0x21..=0x2B | 0x2D..=0x7E))
}

/// Decodes a base64 token of a ferry line into the UTF-8 message it carries.
fn decode_token(token: &str) -> Result<String, &'static str> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("the token is longer than 4096 octets");
    }
    let bytes = B64.decode(token).map_err(|_| "the token is not base64")?;
    String::from_utf8(bytes).map_err(|_| "the message is not UTF-8")
}

/// Splits `name=value` with the one-letter attribute `name`.
fn attribute<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?.strip_prefix('=')
}

fn fresh_nonce(rng: &dyn SecureRandom) -> Option<String> {
    let mut raw = [0u8; NONCE_LEN];
    rng.fill(&mut raw).ok()?;
    Some(B64.encode(raw))
}

/// The gs2 header and the octets the client-final's `c=` carries (header || binding data).
fn channel_binding_input(cb: Option<&ChannelBinding>) -> (String, Vec<u8>) {
    match cb {
        Some(cb) => {
            let header = format!("p={CHANNEL_BINDING_NAME},,");
            let mut input = header.clone().into_bytes();
            input.extend_from_slice(cb);
            (header, input)
        }
        None => (GS2_PLAIN.to_owned(), GS2_PLAIN.as_bytes().to_vec()),
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// A failed authentication, as the server sees it: on the wire always the same
/// `err 535 auth-failed`; [`reason`](Self::reason) says why, for the server's log only (never
/// tell the client: it would tell unknown users from wrong passwords).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct Refusal {
    reason: RefusalReason,
}

impl Refusal {
    /// Why the exchange failed (for logs only).
    pub fn reason(&self) -> &RefusalReason {
        &self.reason
    }
}

impl From<RefusalReason> for Refusal {
    fn from(reason: RefusalReason) -> Self {
        Refusal { reason }
    }
}

/// Why a SCRAM exchange was refused (for the server's log, never for the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// A message does not follow the grammar (what is wrong in a few words).
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Over TLS, a gs2 header without channel binding (`n` or `y`): a downgrade.
    #[error("the client did not bind the exchange to the TLS channel (gs2 flag n or y over TLS)")]
    Downgrade,
    /// A channel-binding type other than `ferry-exporter`, or binding asked on a plain session.
    #[error("channel binding type not supported on this session")]
    BindingType,
    /// An authorization identity (`a=`): not supported.
    #[error("authorization identities (a=) are not supported")]
    AuthzId,
    /// An extension attribute (`m=` or another after the nonce): not supported.
    #[error("SCRAM extensions are not supported")]
    Extension,
    /// A user name outside ferry's USER grammar.
    #[error("the user name is not valid")]
    UserName,
    /// The client-final's nonce is not the combined nonce of the server-first.
    #[error("the client-final's nonce is not the exchange's")]
    Nonce,
    /// The client-final's channel-binding data (`c=`) is not this session's: another
    /// channel (a relayed exchange) or another gs2 header.
    #[error("the channel-binding data is not this session's (a relayed exchange?)")]
    ChannelBinding,
    /// The user does not exist (the exchange ran to the end all the same).
    #[error("unknown user")]
    UnknownUser,
    /// The client's proof is wrong: a wrong password.
    #[error("wrong password (the client proof does not verify)")]
    Proof,
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

fn refuse<T>(reason: RefusalReason) -> Result<T, Refusal> {
    Err(Refusal { reason })
}

/// The server's side of one SCRAM exchange, between the client-first and the client-final.
pub struct ServerExchange {
    user: String,
    known: bool,
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
    /// `client-first-message-bare "," server-first-message`: the start of the AuthMessage.
    auth_prefix: String,
    nonce: String,
    cbind_input: Vec<u8>,
}

impl fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerExchange")
            .field("user", &self.user)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerExchange {
    fn drop(&mut self) {
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

impl ServerExchange {
    /// Reads the client-first message (`client_first`: the base64 token of `auth
    /// scram-sha-256-plus`) and answers the server-first (the base64 token for `more`).
    ///
    /// `cb` is the session's TLS channel binding (spec TLS-15), `None` on a plain session the
    /// operator allowed. `lookup` finds the user's stored password; for an unknown user (or
    /// one without a password) the answer is made up from `secret` so that it looks like a
    /// real one, and [`finish`](Self::finish) refuses. `secret` must be random (32 octets or
    /// more) and the same for the server's lifetime — better, kept across restarts — or the
    /// made-up salt of an unknown user would change between attempts while a real user's
    /// does not. The made-up answer has a [`SALT_LEN`]-octet salt and [`DEFAULT_ITERATIONS`]:
    /// a real user stored with another count or salt length (another tool, an older default)
    /// can be told from an unknown name by its server-first. `rng` draws the server's nonce.
    pub fn start<F>(
        client_first: &str,
        cb: Option<ChannelBinding>,
        lookup: F,
        secret: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<(Self, String), Refusal>
    where
        F: FnOnce(&str) -> Option<StoredPassword>,
    {
        let nonce = fresh_nonce(rng).ok_or(Refusal::from(RefusalReason::Random))?;
        Self::start_with_nonce(client_first, cb, lookup, secret, &nonce)
    }

    fn start_with_nonce<F>(
        client_first: &str,
        cb: Option<ChannelBinding>,
        lookup: F,
        secret: &[u8],
        server_nonce: &str,
    ) -> Result<(Self, String), Refusal>
    where
        F: FnOnce(&str) -> Option<StoredPassword>,
    {
        use RefusalReason::*;
        let message = decode_token(client_first).map_err(Malformed)?;
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let Some((flag, rest)) = message.split_once(',') else {
            return refuse(Malformed("no gs2 header"));
        };
        let Some((authzid, bare)) = rest.split_once(',') else {
            return refuse(Malformed("no gs2 header"));
        };
        if !authzid.is_empty() {
            return refuse(if authzid.starts_with("a=") {
                AuthzId
            } else {
                Malformed("gs2 header")
            });
        }
        match (flag, cb) {
            ("n", None) => {}
            ("n" | "y", Some(_)) => return refuse(Downgrade),
            (flag, Some(_)) if flag == format!("p={CHANNEL_BINDING_NAME}") => {}
            ("y", None) => return refuse(BindingType),
            (flag, _) if flag.starts_with("p=") => return refuse(BindingType),
            _ => return refuse(Malformed("gs2 channel-binding flag")),
        }
        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        let mut attributes = bare.split(',');
        let user = attributes.next().unwrap_or_default();
        if user.starts_with("m=") {
            return refuse(Extension);
        }
        let user = attribute(user, "n").ok_or(Refusal::from(Malformed("no user name")))?;
        let user = unescape_user(user).ok_or(Refusal::from(Malformed("user name escape")))?;
        if !is_user_name(&user) {
            return refuse(UserName);
        }
        let client_nonce = attributes
            .next()
            .and_then(|a| attribute(a, "r"))
            .ok_or(Refusal::from(Malformed("no nonce")))?;
        if !is_nonce(client_nonce) {
            return refuse(Malformed("nonce"));
        }
        if attributes.next().is_some() {
            return refuse(Extension);
        }

        let found = lookup(&user);
        let known = found.is_some();
        let (salt, iterations, stored_key, server_key) = match &found {
            Some(stored) => (
                stored.salt.clone(),
                stored.iterations.get(),
                stored.stored_key,
                stored.server_key,
            ),
            None => {
                // Made up, stable for a user and a secret: see the doc of `start`.
                let user = user.as_bytes();
                let salt = hmac_sha256(secret, &[b"ferry scram salt\0", user]);
                (
                    salt[..SALT_LEN].to_vec(),
                    DEFAULT_ITERATIONS,
                    hmac_sha256(secret, &[b"ferry scram stored-key\0", user]),
                    hmac_sha256(secret, &[b"ferry scram server-key\0", user]),
                )
            }
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let (_, cbind_input) = channel_binding_input(cb.as_ref());
        let exchange = ServerExchange {
            user,
            known,
            stored_key,
            server_key,
            auth_prefix: format!("{bare},{server_first}"),
            nonce,
            cbind_input,
        };
        Ok((exchange, B64.encode(server_first)))
    }

    /// The user name the client gave (known or not).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Reads the client-final message (the base64 token of `auth-final`) and, when the proof
    /// verifies, returns the user and the server-final (the base64 token for `ok auth`).
    pub fn finish(self, client_final: &str) -> Result<(String, String), Refusal> {
        use RefusalReason::*;
        let message = decode_token(client_final).map_err(Malformed)?;
        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        let Some((without_proof, proof)) = message.rsplit_once(",p=") else {
            return refuse(Malformed("no proof"));
        };
        let mut attributes = without_proof.split(',');
        let cbind = attributes
            .next()
            .and_then(|a| attribute(a, "c"))
            .ok_or(Refusal::from(Malformed("no channel binding")))?;
        let nonce = attributes
            .next()
            .and_then(|a| attribute(a, "r"))
            .ok_or(Refusal::from(Malformed("no nonce")))?;
        if attributes.next().is_some() {
            return refuse(Extension);
        }
        let cbind = B64
            .decode(cbind)
            .map_err(|_| Refusal::from(Malformed("channel binding not base64")))?;
        let proof = B64
            .decode(proof)
            .map_err(|_| Refusal::from(Malformed("proof not base64")))?;
        if proof.len() != KEY_LEN {
            return refuse(Malformed("proof length"));
        }
        if cbind != self.cbind_input {
            return refuse(ChannelBinding);
        }
        if nonce != self.nonce {
            return refuse(Nonce);
        }
        let auth_message = format!("{},{without_proof}", self.auth_prefix);
        let client_signature = hmac_sha256(&self.stored_key, &[auth_message.as_bytes()]);
        let mut client_key = Zeroizing::new([0u8; KEY_LEN]);
        for (k, (p, s)) in client_key
            .iter_mut()
            .zip(proof.iter().zip(client_signature))
        {
            *k = p ^ s;
        }
        let candidate = digest::digest(&digest::SHA256, &client_key[..]);
        // Constant-time comparison of H(ClientKey) with StoredKey, through ring's HMAC
        // verification (ring's `constant_time` module is deprecated).
        let compare_key = hmac::Key::new(hmac::HMAC_SHA256, &self.server_key);
        let expected = hmac::sign(&compare_key, &self.stored_key);
        let matches = hmac::verify(&compare_key, candidate.as_ref(), expected.as_ref()).is_ok();
        if !self.known {
            return refuse(UnknownUser);
        }
        if !matches {
            return refuse(Proof);
        }
        let server_signature = hmac_sha256(&self.server_key, &[auth_message.as_bytes()]);
        let server_final = format!("v={}", B64.encode(server_signature));
        Ok((self.user.clone(), B64.encode(server_final)))
    }
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// Why the client's side of a SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The user name is outside ferry's USER grammar.
    #[error(
        "`{0}` is not a valid user name (1 to 64 ASCII letters, digits, `.`, `_`, `-`; not \
         `anonymous`)"
    )]
    UserName(String),
    /// The password cannot be used.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The server's message does not follow the grammar.
    #[error("the server's SCRAM message is malformed: {0}")]
    Malformed(&'static str),
    /// The server's message has an extension ferry does not support.
    #[error("the server's SCRAM message has an extension ferry does not support")]
    Extension,
    /// The server's nonce does not extend the client's.
    #[error("the server's nonce does not extend the client's (a replayed or forged exchange)")]
    Nonce,
    /// The server asks for too few or too many PBKDF2 iterations.
    #[error(
        "the server asks for {0} PBKDF2 iterations, outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
    )]
    Iterations(u32),
    /// The server's salt is empty or too long.
    #[error("the server's salt has {0} octets, not 1 to {MAX_SALT_LEN}")]
    Salt(usize),
    /// The server ended the exchange with an error (`e=`).
    #[error("the server refused the exchange: {0}")]
    Server(String),
    /// The server's signature does not verify: it does not know the password's verifier.
    #[error(
        "the server could not prove it knows the password (not the server the password was \
         set on, or a relayed exchange)"
    )]
    ServerSignature,
    /// A method called in the wrong order (a bug in the caller).
    #[error("SCRAM exchange used out of order")]
    OutOfOrder,
}

enum ClientState {
    /// After the client-first: waiting for the server-first.
    First {
        password: Zeroizing<String>,
        client_nonce: String,
    },
    /// After the client-final: waiting for the server-final.
    Final {
        server_signature: [u8; KEY_LEN],
    },
    Done,
}

/// The client's side of one SCRAM exchange.
pub struct ClientExchange {
    /// `client-first-message-bare`.
    bare: String,
    cbind_input: Vec<u8>,
    state: ClientState,
}

impl fmt::Debug for ClientExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            ClientState::First { .. } => "first",
            ClientState::Final { .. } => "final",
            ClientState::Done => "done",
        };
        f.debug_struct("ClientExchange")
            .field("client_first_bare", &self.bare)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientExchange {
    fn drop(&mut self) {
        if let ClientState::Final { server_signature } = &mut self.state {
            server_signature.zeroize();
        }
    }
}

impl ClientExchange {
    /// Starts an exchange as `user` with `password`, bound to the TLS channel `cb` (spec
    /// TLS-15; `None` on a plain session the operator allowed: no binding), and returns the
    /// client-first (the base64 token of `auth scram-sha-256-plus`). `rng` draws the nonce.
    pub fn start(
        user: &str,
        password: &str,
        cb: Option<ChannelBinding>,
        rng: &dyn SecureRandom,
    ) -> Result<(Self, String), ScramError> {
        let nonce = fresh_nonce(rng).ok_or(ScramError::Password(PasswordError::Random))?;
        Self::start_with_nonce(user, password, cb, nonce)
    }

    fn start_with_nonce(
        user: &str,
        password: &str,
        cb: Option<ChannelBinding>,
        client_nonce: String,
    ) -> Result<(Self, String), ScramError> {
        if !is_user_name(user) {
            return Err(ScramError::UserName(user.escape_debug().to_string()));
        }
        let password = normalize_password(password)?;
        let (header, cbind_input) = channel_binding_input(cb.as_ref());
        let bare = format!("n={},r={client_nonce}", escape_user(user));
        let client_first = B64.encode(format!("{header}{bare}"));
        let exchange = ClientExchange {
            bare,
            cbind_input,
            state: ClientState::First {
                password,
                client_nonce,
            },
        };
        Ok((exchange, client_first))
    }

    /// Reads the server-first (the base64 token of `more`) and returns the client-final (the
    /// base64 token of `auth-final`). Runs PBKDF2 with the server's iteration count.
    pub fn step(&mut self, server_first: &str) -> Result<String, ScramError> {
        use ScramError::*;
        let ClientState::First {
            password,
            client_nonce,
        } = &self.state
        else {
            return Err(OutOfOrder);
        };
        let message = decode_token(server_first).map_err(Malformed)?;
        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
        //                        ["," extensions]
        let mut attributes = message.split(',');
        let nonce = attributes.next().unwrap_or_default();
        if nonce.starts_with("m=") {
            return Err(Extension);
        }
        let nonce = attribute(nonce, "r").ok_or(Malformed("no nonce"))?;
        let salt = attributes
            .next()
            .and_then(|a| attribute(a, "s"))
            .ok_or(Malformed("no salt"))?;
        let iterations = attributes
            .next()
            .and_then(|a| attribute(a, "i"))
            .ok_or(Malformed("no iteration count"))?;
        if attributes.next().is_some() {
            return Err(Extension);
        }
        if !is_nonce(nonce) {
            return Err(Malformed("nonce"));
        }
        if nonce.len() <= client_nonce.len() || !nonce.starts_with(client_nonce.as_str()) {
            return Err(Nonce);
        }
        let salt = B64.decode(salt).map_err(|_| Malformed("salt not base64"))?;
        if salt.is_empty() || salt.len() > MAX_SALT_LEN {
            return Err(Salt(salt.len()));
        }
        let iterations = parse_count(iterations).ok_or(Malformed("iteration count"))?;
        let iterations = check_iterations(iterations).map_err(|_| Iterations(iterations))?;

        let keys = derive_keys(password, &salt, iterations);
        let without_proof = format!("c={},r={nonce}", B64.encode(&self.cbind_input));
        let auth_message = format!("{},{message},{without_proof}", self.bare);
        let client_signature = hmac_sha256(&keys.stored_key, &[auth_message.as_bytes()]);
        let mut proof = [0u8; KEY_LEN];
        for (p, (k, s)) in proof
            .iter_mut()
            .zip(keys.client_key.iter().zip(client_signature))
        {
            *p = k ^ s;
        }
        let server_signature = hmac_sha256(&keys.server_key, &[auth_message.as_bytes()]);
        self.state = ClientState::Final { server_signature };
        Ok(B64.encode(format!("{without_proof},p={}", B64.encode(proof))))
    }

    /// Reads the server-final (the base64 token of `ok auth`) and checks the server's
    /// signature: only a server that knows the password's verifier can make it.
    pub fn finish(mut self, server_final: &str) -> Result<(), ScramError> {
        use ScramError::*;
        let ClientState::Final { server_signature } = &self.state else {
            return Err(OutOfOrder);
        };
        let expected = *server_signature;
        self.state = ClientState::Done;
        let message = decode_token(server_final).map_err(Malformed)?;
        if let Some(error) = attribute(&message, "e") {
            // server-error-value: printable; shown to the user, so kept short and visible.
            let shown: String = error
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(80)
                .collect();
            return Err(Server(shown));
        }
        let signature = attribute(&message, "v").ok_or(Malformed("no verifier"))?;
        if signature.contains(',') {
            return Err(Extension);
        }
        let signature = B64
            .decode(signature)
            .map_err(|_| Malformed("verifier not base64"))?;
        if signature != expected {
            return Err(ServerSignature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: user "user", password "pencil", SCRAM-SHA-256 without binding.
    const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn text(token: &str) -> String {
        String::from_utf8(B64.decode(token).expect("valid")).expect("valid")
    }

    fn rfc_stored() -> StoredPassword {
        StoredPassword::with_salt("pencil", 4096, B64.decode(RFC_SALT).expect("valid"))
            .expect("valid")
    }

    #[test]
    fn rfc7677_vector_client_and_server() {
        let (mut client, client_first) =
            ClientExchange::start_with_nonce("user", "pencil", None, RFC_CLIENT_NONCE.to_owned())
                .expect("valid");
        assert_eq!(text(&client_first), RFC_CLIENT_FIRST);

        let mut looked_up = None;
        let (server, server_first) = ServerExchange::start_with_nonce(
            &client_first,
            None,
            |user| {
                looked_up = Some(user.to_owned());
                Some(rfc_stored())
            },
            b"unused",
            RFC_SERVER_NONCE,
        )
        .expect("valid");
        assert_eq!(looked_up.as_deref(), Some("user"));
        assert_eq!(text(&server_first), RFC_SERVER_FIRST);

        let client_final = client.step(&server_first).expect("valid");
        assert_eq!(text(&client_final), RFC_CLIENT_FINAL);

        let (user, server_final) = server.finish(&client_final).expect("valid");
        assert_eq!(user, "user");
        assert_eq!(text(&server_final), RFC_SERVER_FINAL);
        client.finish(&server_final).expect("valid");
    }

    #[test]
    fn rfc7677_vector_server_against_the_rfc_messages() {
        let (server, server_first) = ServerExchange::start_with_nonce(
            &B64.encode(RFC_CLIENT_FIRST),
            None,
            |_| Some(rfc_stored()),
            b"unused",
            RFC_SERVER_NONCE,
        )
        .expect("valid");
        assert_eq!(text(&server_first), RFC_SERVER_FIRST);
        let (_, server_final) = server.finish(&B64.encode(RFC_CLIENT_FINAL)).expect("valid");
        assert_eq!(text(&server_final), RFC_SERVER_FINAL);
    }

    #[test]
    fn rfc7677_vector_over_tls_needs_binding() {
        // The RFC's client-first (`n,,`) on a TLS session is a downgrade.
        let refusal = ServerExchange::start_with_nonce(
            &B64.encode(RFC_CLIENT_FIRST),
            Some([7; 32]),
            |_| Some(rfc_stored()),
            b"unused",
            RFC_SERVER_NONCE,
        )
        .expect_err("refused");
        assert_eq!(refusal.reason(), &RefusalReason::Downgrade);
    }

    #[test]
    fn stored_password_of_the_rfc_vector() {
        let stored = rfc_stored();
        let text = stored.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
        assert_eq!(text.parse::<StoredPassword>().expect("valid"), stored);
        // StoredKey = H(ClientKey); with the RFC's proof and signature the server accepted,
        // so the keys are right; also check they are not shown by Debug.
        assert!(!format!("{stored:?}").contains(&B64.encode(stored.stored_key)));
    }

    #[test]
    fn user_name_escapes() {
        assert_eq!(escape_user("a=b,c"), "a=3Db=2Cc");
        assert_eq!(unescape_user("a=3Db=2Cc").as_deref(), Some("a=b,c"));
        assert_eq!(unescape_user("a=3"), None);
        assert_eq!(unescape_user("a=41"), None);
        assert!(is_user_name("alice.b_c-1"));
        assert!(!is_user_name("anonymous"));
        assert!(!is_user_name(""));
        assert!(!is_user_name(&"a".repeat(65)));
        assert!(!is_user_name("é"));
    }

    #[test]
    fn counts_are_strict() {
        assert_eq!(parse_count("4096"), Some(4096));
        for bad in [
            "",
            "04096",
            "+4096",
            "-1",
            " 4096",
            "4096 ",
            "99999999999",
            "0x10",
        ] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }
}
