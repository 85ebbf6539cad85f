#![no_main]
//! The `auth` extension in the server session core, in memory, against the real users
//! directory (`ferry_auth::directory::Directory`): arbitrary client octets mixed with real
//! key proofs and SCRAM exchanges, right or wrong (another connection's channel binding,
//! another user, a wrong password, unbound), and time passing; failures are throttled per
//! address (replies held back, then `err 425`). alice has a key and may only
//! list and read; bob has a password and may list and create, not read. Asserts: no panic;
//! `ok auth USER` is sent, and the session serves USER, only after a valid proof for USER on
//! this connection; before it no storage request succeeds (AUTH-17), after it only those
//! USER has the right for (AUTH-19); the folder changes only through bob.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_auth::directory::Directory;
use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::scram::{ClientExchange, MIN_ITERATIONS, StoredPassword};
use ferry_auth::users::{User, UserName, UsersFile};
use ferry_proto::auth::Authenticator;
use ferry_proto::memory::Harness;
use ferry_proto::server::SessionConfig;
use ferry_wire::auth::{AuthReply, AuthRequest, decode_auth_reply};
use ferry_wire::{Greeting, Limits};
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;

const CB: [u8; 32] = [7; 32];

/// Runs so far: each gets an IPv4 address of its own.
static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[derive(Debug, Clone, Arbitrary)]
enum Op {
    /// Octets from the client.
    Send(Vec<u8>),
    /// A key proof: alice's (or bob's name with alice's key), for this connection or another.
    Key { as_bob: bool, other_cb: bool },
    /// A SCRAM exchange: bob's (or carol's, unknown), with the right password or not, bound to
    /// this connection, another, or nothing.
    Scram {
        carol: bool,
        wrong: bool,
        binding: Binding,
    },
    /// Time passes (milliseconds).
    Wait(u16),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Binding {
    This,
    Other,
    None,
}

struct World {
    alice: PrivateKey,
    directory: Arc<Directory>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let alice = PrivateKey::generate("alice").expect("key");
        let mut file = UsersFile::default();
        let mut a = User::new("/srv/alice".into(), Rights::READ_ONLY).expect("alice");
        a.keys.push(alice.public().clone());
        file.users.insert(UserName::new("alice").expect("name"), a);
        let rights: Rights = "list,create".parse().expect("rights");
        let mut b = User::new("/srv/bob".into(), rights).expect("bob");
        b.password = Some(
            StoredPassword::new("pw", MIN_ITERATIONS, &SystemRandom::new()).expect("verifier"),
        );
        file.users.insert(UserName::new("bob").expect("name"), b);
        World {
            alice,
            directory: Arc::new(Directory::new(file, true).expect("directory")),
        }
    })
}

fuzz_target!(|ops: Vec<Op>| {
    let w = world();
    let greeting = ferry_wire::auth::offer(
        Greeting::new(Limits {
            max_eager: 4096,
            idle: 2,
            stall: 1,
            ..Limits::default()
        }),
        &w.directory.mechanisms(),
    )
    .expect("offer");
    let cfg = SessionConfig {
        max_eager: 4096,
        idle: Duration::from_secs(2),
        stall: Duration::from_secs(1),
        auth: Some(Arc::clone(&w.directory) as Arc<dyn Authenticator>),
        ..ferry_proto::memory::test_config(&greeting.to_bytes())
    };
    let mut h = Harness::new(cfg);
    h.s.set_channel_binding(CB);
    // Failures are throttled per address (AUTH-20, AUTH-22): the directory's throttle lives
    // as long as the process, so each run comes from an address of its own.
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    h.s.set_peer(std::net::SocketAddr::from((n.to_be_bytes(), 1)));
    h.files.insert("seed".into(), vec![b'x'; 300]);
    h.run();
    let before = h.files.clone();
    // Who may be granted: a valid proof for them was sent on this connection.
    let mut valid: Vec<&str> = Vec::new();
    for op in ops.iter().take(48).cloned() {
        match op {
            Op::Send(bytes) => {
                h.client(&bytes);
            }
            Op::Wait(ms) => {
                h.wait(Duration::from_millis(u64::from(ms)));
            }
            Op::Key { as_bob, other_cb } => {
                let name = if as_bob { "bob" } else { "alice" };
                let cb = if other_cb { [8; 32] } else { CB };
                let user = UserName::new(name).expect("name");
                let (public_key, signature) = ferry_auth::proof::sign(&w.alice, &cb, &user);
                if !as_bob && !other_cb {
                    valid.push("alice");
                }
                h.client(
                    &AuthRequest::Ed25519 {
                        user,
                        public_key,
                        signature,
                    }
                    .encode(),
                );
            }
            Op::Scram {
                carol,
                wrong,
                binding,
            } => {
                let name = if carol { "carol" } else { "bob" };
                let cb = match binding {
                    Binding::This => Some(CB),
                    Binding::Other => Some([8; 32]),
                    Binding::None => None,
                };
                let password = if wrong { "pw2" } else { "pw" };
                let rng = SystemRandom::new();
                let Ok((mut client, first)) = ClientExchange::start(name, password, cb, &rng)
                else {
                    continue;
                };
                let mark = h.sent.len();
                h.client(
                    &AuthRequest::Scram {
                        plus: cb.is_some(),
                        client_first: B64.decode(first).expect("b64"),
                    }
                    .encode(),
                );
                h.run();
                // The answer is the last line, if the session read the request at all.
                let fresh = h.sent[mark..].to_vec();
                let last = fresh
                    .strip_suffix(b"\n")
                    .map(|f| f.rsplit(|b| *b == b'\n').next().unwrap_or(f))
                    .unwrap_or(&[]);
                let mut line = last.to_vec();
                line.push(b'\n');
                let Ok((AuthReply::More { server_first }, _)) = decode_auth_reply(&line) else {
                    continue;
                };
                // An unknown user's made-up server-first asks for as many iterations as a
                // real verifier (400,000): too slow to compute here, and refused whatever
                // the proof, so carol's client-final is made up too.
                let client_final = if carol {
                    made_up_final(&server_first, cb)
                } else {
                    client.step(&B64.encode(server_first)).ok()
                };
                if let Some(client_final) = client_final {
                    if !carol && !wrong && matches!(binding, Binding::This) {
                        valid.push("bob");
                    }
                    h.client(
                        &AuthRequest::Final {
                            client_final: B64.decode(client_final).expect("b64"),
                        }
                        .encode(),
                    );
                }
            }
        }
        h.run();
    }
    h.eof = true;
    h.run();

    // Read what the server said, line by line (payload octets make odd lines, which start
    // with none of the prefixes below).
    let mut user: Option<&str> = None;
    for line in h.sent.split(|b| *b == b'\n') {
        if let Some(name) = line.strip_prefix(b"ok auth ") {
            let name = name.split(|b| *b == b' ').next().unwrap_or_default();
            let name = std::str::from_utf8(name).expect("ascii");
            assert!(
                valid.contains(&name),
                "ok auth {name} without a valid proof"
            );
            assert!(user.is_none(), "a second ok auth (AUTH-7)");
            user = valid.iter().copied().find(|v| *v == name);
        }
        let (list, read, create) = match user {
            None => (false, false, false),
            Some("alice") => (true, true, false),
            Some(_) => (true, false, true),
        };
        if line.starts_with(b"ok dir ") {
            assert!(list, "a listing for {user:?}");
        }
        if line.starts_with(b"ok get ") {
            assert!(read, "a download for {user:?}");
        }
        if line == b"go" || line.starts_with(b"ok put ") {
            assert!(create, "an upload for {user:?}");
        }
    }
    assert_eq!(
        h.s.grant().map(|g| g.user.as_str().to_owned()),
        user.map(str::to_owned),
        "the session serves someone the replies did not name"
    );
    if user != Some("bob") {
        assert_eq!(h.files, before, "the folder changed without bob");
    }
});

/// A client-final-message of the right form with a proof of zeros, for `server_first`.
fn made_up_final(server_first: &[u8], cb: Option<[u8; 32]>) -> Option<String> {
    let text = std::str::from_utf8(server_first).ok()?;
    let nonce = text.split(',').find_map(|a| a.strip_prefix("r="))?;
    let mut binding = match cb {
        Some(_) => b"p=ferry-exporter,,".to_vec(),
        None => b"n,,".to_vec(),
    };
    binding.extend(cb.unwrap_or_default().iter().filter(|_| cb.is_some()));
    let message = format!(
        "c={},r={nonce},p={}",
        B64.encode(binding),
        B64.encode([0u8; 32])
    );
    Some(B64.encode(message))
}
