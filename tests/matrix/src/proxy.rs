//! A one-connection TCP proxy on 127.0.0.1:0 that forwards both directions and cuts the
//! connection once `limit` octets have gone from the server to the client: a download broken
//! in the middle, for resumption tests. It stops by itself (every socket has timeouts) and
//! is joined on drop.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The proxy. Accepts one connection.
#[derive(Debug)]
pub struct CutProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl CutProxy {
    /// A proxy to `upstream` that passes `limit` octets downstream, then closes both sides.
    pub fn start(upstream: SocketAddr, limit: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("ferry-cut-proxy".into())
            .spawn({
                let stop = stop.clone();
                move || serve(&listener, upstream, limit, &stop)
            })
            .expect("spawn the proxy");
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the proxy and returns how many octets it passed downstream.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map_or(0, |t| t.join().expect("the proxy panicked"))
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, upstream: SocketAddr, limit: u64, stop: &AtomicBool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if !stop.load(Ordering::SeqCst) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => return 0,
        }
    };
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(10)) else {
        return 0;
    };
    for s in [&client, &server] {
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    }
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return 0;
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Client to server, until either side ends.
        scope.spawn(|| {
            let mut buf = vec![0u8; 64 * 1024];
            while !done.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                match c_read.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => break,
                }
            }
            let _ = s_write.shutdown(Shutdown::Write);
        });
        // Server to client, up to the limit.
        let (mut s_read, mut c_write) = (&server, &client);
        let mut passed = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while passed < limit && !stop.load(Ordering::SeqCst) {
            match s_read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let n = n.min(usize::try_from(limit - passed).unwrap_or(usize::MAX));
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed += n as u64;
                }
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        done.store(true, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        passed
    })
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
