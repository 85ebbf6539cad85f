//! A TLS-terminating relay for the runner's TLS tests, until the reference servers speak TLS
//! themselves: it accepts ferry/1 over TLS on 127.0.0.1:0 (rustls with
//! `ferry_tls::ServerTls`: TLS 1.3 only, ALPN `ferry/1` required) and, once a handshake is
//! complete, relays the session to a plain ferry/1 server. The session's ends are carried
//! over: the client's `close_notify` and EOF become a half-close towards the server, a cut
//! without `close_notify` (or a TLS error) cuts the plain connection, and the server's close
//! becomes `close_notify` then the TCP close. `Faults` make it break TLS-5 or TLS-6 on
//! purpose, for the tests that check the TLS cases catch them.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use ferry_tls::ServerTls;
use ferry_tls::rustls::ServerConnection;

/// Deliberate violations.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    /// Close the TCP connection without `close_notify` (TLS-6).
    pub no_close_notify: bool,
    /// Relay a connection whose first octet is no TLS handshake record as plain ferry/1
    /// (TLS-5).
    pub plain_fallback: bool,
}

/// A relay; it stops accepting when dropped.
pub(crate) struct Relay {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Relays ferry/1 over TLS on a new port to the plain server at `backend`.
    pub(crate) fn start(tls: &ServerTls, backend: SocketAddr, faults: Faults) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let tls = tls.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let tls = tls.clone();
                thread::spawn(move || session(&tls, client, backend, faults));
            }
        });
        Relay { addr, stop }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes what rustls has to send.
fn flush(tls: &mut ServerConnection, client: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        tls.write_tls(client)?;
    }
    client.flush()
}

/// Buffers of the relay's own sockets: small and fixed (no autotuning), so that what a server
/// has sent is, as without the relay, close to what its client has read (TIME-2/3 paces its
/// reading against the server's stall clock).
const SOCKET_BUFFER: usize = 128 * 1024;

fn small_buffers(s: &TcpStream) {
    let s = socket2::SockRef::from(s);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
}

fn session(tls: &ServerTls, mut client: TcpStream, backend: SocketAddr, faults: Faults) {
    let _ = client.set_nodelay(true);
    small_buffers(&client);
    // A peer that never completes its handshake does not hold the thread for ever.
    let _ = client.set_read_timeout(Some(Duration::from_secs(20)));
    if faults.plain_fallback {
        let mut first = [0u8; 1];
        if client.peek(&mut first).is_ok_and(|n| n == 1) && first[0] != 22 {
            if let Ok(plain) = TcpStream::connect(backend) {
                pump_plain(client, plain);
            }
            return;
        }
    }
    let Ok(mut conn) = ServerConnection::new(tls.config()) else {
        return;
    };
    // The handshake.
    while conn.is_handshaking() {
        match conn.complete_io(&mut client) {
            Ok((0, 0)) => return,
            Ok(_) => {}
            Err(_) => {
                let _ = flush(&mut conn, &mut client);
                return;
            }
        }
    }
    let _ = client.set_read_timeout(None);
    let Ok(plain) = TcpStream::connect(backend) else {
        conn.send_close_notify();
        let _ = flush(&mut conn, &mut client);
        return;
    };
    let _ = plain.set_nodelay(true);
    small_buffers(&plain);
    let conn = Arc::new(Mutex::new(conn));
    // Server to client.
    let to_client = {
        let conn = Arc::clone(&conn);
        let mut client = client.try_clone().expect("clone");
        let mut plain = plain.try_clone().expect("clone");
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match plain.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut c = lock(&conn);
                        if c.writer().write_all(&buf[..n]).is_err()
                            || flush(&mut c, &mut client).is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let mut c = lock(&conn);
            if !faults.no_close_notify {
                c.send_close_notify();
            }
            let _ = flush(&mut c, &mut client);
            let _ = client.shutdown(Shutdown::Write);
        })
    };
    // Client to server.
    let mut plain_w = plain;
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain_dead = false;
    loop {
        // A read error (reset) ends the connection like a cut.
        let n = client.read(&mut buf).unwrap_or_default();
        let mut c = lock(&conn);
        if n == 0 {
            // The TCP end: clean (after close_notify) or a cut.
            let clean = c.process_new_packets().is_ok_and(|s| s.peer_has_closed());
            drop(c);
            let how = if clean {
                Shutdown::Write
            } else {
                Shutdown::Both
            };
            let _ = plain_w.shutdown(how);
            break;
        }
        let mut rd = &buf[..n];
        let mut out = Vec::new();
        let (mut ok, mut closed) = (true, false);
        while ok && !rd.is_empty() {
            ok = c.read_tls(&mut rd).is_ok();
            match c.process_new_packets() {
                Ok(state) if ok => {
                    closed |= state.peer_has_closed();
                    let mut p = vec![0u8; state.plaintext_bytes_to_read()];
                    let _ = c.reader().read_exact(&mut p);
                    out.extend_from_slice(&p);
                }
                _ => ok = false,
            }
        }
        // Alerts, if any.
        let _ = flush(&mut c, &mut client);
        drop(c);
        // A server that closed is not written to any more; its replies still go out.
        if !out.is_empty() && !plain_dead && plain_w.write_all(&out).is_err() {
            plain_dead = true;
        }
        if !ok {
            let _ = plain_w.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            break;
        }
        if closed {
            let _ = plain_w.shutdown(Shutdown::Write);
            break;
        }
    }
    let _ = to_client.join();
}

/// Copies both ways between two plain connections (the plain-fallback fault).
fn pump_plain(client: TcpStream, plain: TcpStream) {
    let (mut c_r, mut p_w) = (
        client.try_clone().expect("clone"),
        plain.try_clone().expect("clone"),
    );
    let t = thread::spawn(move || {
        let _ = io::copy(&mut c_r, &mut p_w);
        let _ = p_w.shutdown(Shutdown::Write);
    });
    let (mut p_r, mut c_w) = (plain, client);
    let _ = io::copy(&mut p_r, &mut c_w);
    let _ = c_w.shutdown(Shutdown::Write);
    let _ = t.join();
}
