//! [`Relay`]: a TCP relay in front of a server whose first connection stalls one way, so
//! that a transfer on it hangs until the client gives up: for testing cancellation on any
//! client engine, without timing.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Which way a [`Relay`]'s first connection stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// The server's octets stop after this many (a download hangs).
    Down(usize),
    /// The client's octets stop after this many (an upload hangs).
    Up(usize),
}

/// A TCP relay on 127.0.0.1:0 in front of a server: its first connection stops forwarding
/// one way after some octets (it reads and drops the rest, so the receiving side waits
/// forever); later connections are relayed in full. Each direction's thread ends when its
/// sender closes; dropping the relay stops accepting.
#[derive(Debug)]
pub struct Relay {
    /// Where the relay listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stalled: Arc<(Mutex<bool>, Condvar)>,
}

impl Relay {
    /// Starts relaying to `upstream`.
    pub fn start(upstream: SocketAddr, stall: Stall) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new((Mutex::new(false), Condvar::new()));
        let (stopped, reached) = (Arc::clone(&stop), Arc::clone(&stalled));
        thread::spawn(move || {
            let mut first = true;
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(upstream) else {
                    break;
                };
                let (down, up) = match (first, stall) {
                    (true, Stall::Down(n)) => (Some(n), None),
                    (true, Stall::Up(n)) => (None, Some(n)),
                    (false, _) => (None, None),
                };
                first = false;
                pipe(&server, &client, down, Arc::clone(&reached));
                pipe(&client, &server, up, Arc::clone(&reached));
            }
        });
        Relay {
            addr,
            stop,
            stalled,
        }
    }

    /// Waits (at most `limit`) until the first connection has stalled; returns whether it
    /// has.
    pub fn wait_stalled(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (lock, cv) = &*self.stalled;
        let mut stalled = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !*stalled {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            stalled = cv
                .wait_timeout(stalled, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Wake the accept loop so that its thread ends.
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` in a thread, at most `limit` octets (all without a limit); past the
/// limit, or once `to` cannot take more, it reads and drops the rest, so that the sender
/// never blocks on the relay. When `from` ends it passes the end on (`to`'s sending side is
/// shut down) and the thread ends; the peers then close their sockets themselves. (Shutting
/// down both ways instead can leave a sender blocked on a zero window until its timeout.)
fn pipe(
    from: &TcpStream,
    to: &TcpStream,
    limit: Option<usize>,
    stalled: Arc<(Mutex<bool>, Condvar)>,
) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone a socket"),
        to.try_clone().expect("clone a socket"),
    );
    let limit = limit.unwrap_or(usize::MAX);
    thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut sent = 0;
        let mut forwarding = true;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let pass = if forwarding { n.min(limit - sent) } else { 0 };
            if pass > 0 && to.write_all(&buf[..pass]).is_err() {
                forwarding = false;
            }
            sent += pass;
            if sent == limit {
                let (lock, cv) = &*stalled;
                *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
                cv.notify_all();
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
