//! Server and client configurations against each other, in memory (no sockets): identity by
//! pinned key, trust on first use, TLS 1.3 and ALPN only, channel binding, reloading.

use ferry_tls::rustls::{self, ClientConnection, ServerConnection};
use ferry_tls::{ClientTls, Fingerprint, ServerTls, Trust};

/// Moves records between the two until neither is handshaking or one fails.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).map_err(|e| e.to_string())?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).map_err(|e| e.to_string())?;
        }
        let server_result = server.process_new_packets();
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).map_err(|e| e.to_string())?;
        }
        server_result.map_err(|e| format!("server: {e}"))?;
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).map_err(|e| e.to_string())?;
        }
        client
            .process_new_packets()
            .map_err(|e| format!("client: {}", ferry_tls::explain(&e).unwrap_or_default()))?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

fn pair(server: &ServerTls, client: &ClientTls) -> (ClientConnection, ServerConnection) {
    let c = client.connect().expect("client connection");
    let s = ServerConnection::new(server.config()).expect("server connection");
    (c, s)
}

fn self_signed() -> (tempfile::TempDir, ServerTls) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, made) = ServerTls::self_signed(&dir.path().join("tls")).expect("self-signed");
    assert!(made);
    (dir, tls)
}

#[test]
fn a_pinned_key_is_accepted_and_both_sides_agree_on_the_channel_binding() {
    let (_dir, server) = self_signed();
    let client = ClientTls::new("localhost", 7451, Trust::Fingerprint(server.fingerprint()))
        .expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("handshake");
    assert_eq!(c.alpn_protocol(), Some(&b"ferry/1"[..]));
    assert_eq!(s.alpn_protocol(), Some(&b"ferry/1"[..]));
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let cb = ferry_tls::channel_binding(&c).expect("client binding");
    assert_eq!(cb, ferry_tls::channel_binding(&s).expect("server binding"));
    // Another connection binds to another value.
    let (mut c2, mut s2) = pair(&server, &client);
    handshake(&mut c2, &mut s2).expect("handshake");
    assert_ne!(cb, ferry_tls::channel_binding(&c2).expect("binding"));
}

#[test]
fn another_key_than_the_pinned_one_is_refused() {
    let (_dir, server) = self_signed();
    let pinned = Fingerprint::of_spki(b"some other key");
    let client = ClientTls::new("localhost", 7451, Trust::Fingerprint(pinned)).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    let err = handshake(&mut c, &mut s).expect_err("refused");
    assert!(err.contains(&pinned.to_string()), "{err}");
    assert!(err.contains(&server.fingerprint().to_string()), "{err}");
}

#[test]
fn self_signed_pair_is_made_once_and_kept_private() {
    let (dir, server) = self_signed();
    let (again, made) = ServerTls::self_signed(&dir.path().join("tls")).expect("load");
    assert!(!made);
    assert_eq!(again.fingerprint(), server.fingerprint());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tls"), 0o700);
    assert_eq!(mode("tls/key.pem"), 0o600);
    // Half a pair is not silently replaced.
    std::fs::remove_file(dir.path().join("tls/cert.pem")).expect("rm");
    assert!(ServerTls::self_signed(&dir.path().join("tls")).is_err());
}

#[test]
fn first_use_remembers_then_refuses_a_changed_key_naming_file_and_line() {
    let (_dir, server) = self_signed();
    let home = tempfile::tempdir().expect("tempdir");
    let kh = home.path().join("ferry").join("known_hosts");
    std::fs::create_dir_all(kh.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &kh,
        "# mine\nelsewhere:1 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",
    )
    .expect("write");
    let trust = Trust::FirstUse(kh.clone());

    let client = ClientTls::new("localhost", 9999, trust.clone()).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("first use");
    let notices = client.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains(&server.fingerprint().to_string()),
        "{notices:?}"
    );
    assert!(
        notices[0].contains(&format!("{}:3", kh.display())),
        "{notices:?}"
    );
    let text = std::fs::read_to_string(&kh).expect("read");
    assert!(
        text.ends_with(&format!("localhost:9999 {}\n", server.fingerprint())),
        "{text}"
    );

    // The same key again: accepted, nothing new to show, nothing added.
    let client = ClientTls::new("LOCALHOST", 9999, trust.clone()).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("known key");
    assert!(client.take_notices().is_empty());
    assert_eq!(std::fs::read_to_string(&kh).expect("read"), text);

    // Another server (key) at that address: refused, the file and line named.
    let (_dir2, other) = self_signed();
    let client = ClientTls::new("localhost", 9999, trust).expect("client");
    let (mut c, mut s) = pair(&other, &client);
    let err = handshake(&mut c, &mut s).expect_err("changed key");
    assert!(err.contains("HAS CHANGED"), "{err}");
    assert!(err.contains(&format!("{}:3", kh.display())), "{err}");
    assert!(err.contains(&other.fingerprint().to_string()), "{err}");
    assert_eq!(
        std::fs::read_to_string(&kh).expect("read"),
        text,
        "nothing remembered"
    );
}

#[test]
fn a_damaged_known_hosts_refuses_instead_of_forgetting() {
    let (_dir, server) = self_signed();
    let home = tempfile::tempdir().expect("tempdir");
    let kh = home.path().join("known_hosts");
    std::fs::write(&kh, "localhost:9999 SHA256:garbage\n").expect("write");
    let client = ClientTls::new("localhost", 9999, Trust::FirstUse(kh.clone())).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    let err = handshake(&mut c, &mut s).expect_err("damaged");
    assert!(err.contains(&format!("{}:1", kh.display())), "{err}");
}

#[test]
fn a_ca_file_verifies_chain_and_name() {
    let (dir, server) = self_signed();
    let cert = dir.path().join("tls/cert.pem");
    // The self-signed certificate is its own CA, valid for localhost.
    let client = ClientTls::new("localhost", 7451, Trust::Ca(cert.clone())).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("chain and name");
    let client = ClientTls::new("files.example", 7451, Trust::Ca(cert)).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    let err = handshake(&mut c, &mut s).expect_err("wrong name");
    assert!(err.contains("not valid for the host name"), "{err}");
}

/// A client that offers `versions` and `alpn`, verifying nothing.
fn raw_client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: Vec<Vec<u8>>,
) -> ClientConnection {
    let names: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
    ClientTls::new("localhost", 1, Trust::Insecure)
        .expect("client")
        .probe(versions, &names)
        .expect("connection")
}

#[test]
fn tls_1_2_and_clients_without_alpn_ferry_1_are_refused() {
    let (_dir, server) = self_signed();
    // The raw client itself is fine with TLS 1.3 and ferry/1.
    let mut c = raw_client(&[&rustls::version::TLS13], vec![b"ferry/1".to_vec()]);
    let mut s = ServerConnection::new(server.config()).expect("server");
    handshake(&mut c, &mut s).expect("control");
    for (versions, alpn, what) in [
        (
            &[&rustls::version::TLS12][..],
            vec![b"ferry/1".to_vec()],
            "TLS 1.2",
        ),
        (&[&rustls::version::TLS13][..], vec![], "no ALPN"),
        (
            &[&rustls::version::TLS13][..],
            vec![b"http/1.1".to_vec()],
            "other ALPN",
        ),
    ] {
        let mut c = raw_client(versions, alpn);
        let mut s = ServerConnection::new(server.config()).expect("server");
        let err = handshake(&mut c, &mut s).expect_err(what);
        assert!(err.starts_with("server:"), "{what}: {err}");
    }
}

#[test]
fn replaced_certificate_files_are_picked_up() {
    let (dir, server) = self_signed();
    let before = server.fingerprint();
    let (_other_dir, other) = self_signed();
    let (cert, key) = other.files();
    std::fs::copy(cert, dir.path().join("tls/cert.pem.x")).expect("copy");
    std::fs::copy(key, dir.path().join("tls/key.pem.x")).expect("copy");
    std::fs::rename(
        dir.path().join("tls/key.pem.x"),
        dir.path().join("tls/key.pem"),
    )
    .expect("mv");
    std::fs::rename(
        dir.path().join("tls/cert.pem.x"),
        dir.path().join("tls/cert.pem"),
    )
    .expect("mv");
    assert_eq!(server.reload().expect("reload"), other.fingerprint());
    assert_ne!(before, other.fingerprint());
    // Handshakes use the new key: a client pinning it connects.
    let client =
        ClientTls::new("localhost", 1, Trust::Fingerprint(other.fingerprint())).expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("new key");
    // A broken file keeps the old pair.
    std::fs::write(dir.path().join("tls/key.pem"), "not a key").expect("write");
    assert!(server.reload().is_err());
    assert_eq!(server.fingerprint(), other.fingerprint());
}

#[test]
fn explain_finds_a_tls_error_inside_io_errors() {
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
    let wrapped = std::io::Error::other(io);
    let text = ferry_tls::explain(&wrapped).expect("found");
    assert!(text.contains("integrity"), "{text}");
    assert!(ferry_tls::explain(&std::io::Error::other("plain")).is_none());
}

#[test]
fn sessions_use_aes_128_gcm() {
    let (_dir, server) = self_signed();
    let client = ClientTls::new("localhost", 7451, Trust::Fingerprint(server.fingerprint()))
        .expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("handshake");
    let suite = c.negotiated_cipher_suite().expect("suite").suite();
    assert_eq!(suite, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
}

/// Plaintext comes out in pieces as large as the octets read ahead allow (rustls alone gives
/// one record, at most 16 KiB, per read); a damaged record after them is an error only once
/// the plaintext before it was delivered; the end without `close_notify` is told apart.
#[test]
fn read_ahead_gives_large_reads_and_the_error_after_the_plaintext() {
    use std::io::Write as _;

    let (_dir, server) = self_signed();
    let client = ClientTls::new("localhost", 7451, Trust::Fingerprint(server.fingerprint()))
        .expect("client");
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("handshake");
    let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    for piece in sent.chunks(32 * 1024) {
        c.writer().write_all(piece).expect("plaintext to rustls");
        while c.wants_write() {
            c.write_tls(&mut wire).expect("records");
        }
    }
    // One more record, damaged on the way.
    let good = wire.len();
    c.writer()
        .write_all(b"never read")
        .expect("plaintext to rustls");
    while c.wants_write() {
        c.write_tls(&mut wire).expect("records");
    }
    wire[good + 8] ^= 1;

    // What a driver does: read_plaintext, and a read of the socket when it says so.
    let mut ahead = ferry_tls::ReadAhead::default();
    let mut rest = &wire[..];
    let mut got = Vec::new();
    let mut reads = Vec::new();
    let error = loop {
        let mut buf = vec![0u8; 200_000];
        match ahead.read_plaintext(&mut s, &mut buf) {
            Ok(Some(0)) => panic!("no close_notify was sent"),
            Ok(Some(n)) => {
                reads.push(n);
                got.extend_from_slice(&buf[..n]);
            }
            Ok(None) => {
                assert!(!rest.is_empty(), "the damaged record was not noticed");
                socket(&mut ahead, &mut rest);
            }
            Err(e) => break e,
        }
    };
    assert!(
        got == sent,
        "{} of {} octets, in reads of {reads:?}",
        got.len(),
        sent.len()
    );
    assert!(
        reads.iter().any(|&n| n > 16 * 1024),
        "reads are not limited to one record: {reads:?}"
    );
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("decrypt"), "{error}");

    // The end of the connection without close_notify.
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("handshake");
    let mut ahead = ferry_tls::ReadAhead::default();
    let mut buf = [0u8; 100];
    assert!(matches!(ahead.read_plaintext(&mut s, &mut buf), Ok(None)));
    socket(&mut ahead, &mut &[][..]);
    let cut = ahead.read_plaintext(&mut s, &mut buf).expect_err("a cut");
    assert_eq!(cut.kind(), std::io::ErrorKind::UnexpectedEof);
    // And with it.
    let (mut c, mut s) = pair(&server, &client);
    handshake(&mut c, &mut s).expect("handshake");
    c.send_close_notify();
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).expect("records");
    }
    let mut ahead = ferry_tls::ReadAhead::default();
    socket(&mut ahead, &mut &wire[..]);
    assert!(matches!(
        ahead.read_plaintext(&mut s, &mut buf),
        Ok(Some(0))
    ));
    drop(c);
}

/// A read of the "socket" `rest` into `ahead`.
fn socket(ahead: &mut ferry_tls::ReadAhead, rest: &mut &[u8]) {
    ahead
        .fill_with(|space: &mut [u8]| {
            let k = rest.len().min(space.len());
            space[..k].copy_from_slice(&rest[..k]);
            *rest = &rest[k..];
            Ok::<_, ()>(k)
        })
        .expect("read");
}
