//! The ceilings ferry is measured against, in the same run and on the same files:
//!
//! - `tcp-copy`: the large file read from the served folder, sent over one loopback TCP
//!   connection and written to the destination folder, in 1 MiB pieces, by two threads: what
//!   workload 1's get does, without a protocol or a digest. The ceiling for a download.
//! - `tcp-memory`: the same number of octets from memory to memory over loopback: the
//!   loopback ceiling itself.
//! - `disk-write`: the same number of octets written to a new file in the served folder, then
//!   fsynced: the ceiling for an upload, which a server must make durable before `ok put`.
//! - `tls-memory` (with `--tls`): `tcp-memory` through rustls on both ends (TLS 1.3, the
//!   configurations every ferry peer uses, the key pinned): the ceiling of one TLS connection
//!   on this machine, encryption on one core and decryption on the other.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

/// Sends `size` octets from memory to memory over a fresh loopback connection inside TLS
/// (ferry's server and client configurations, the server's self-signed key kept in
/// `tls_dir`); returns the seconds from connecting to the last octet received, the handshake
/// included. The sender ends with close_notify; the receiver counts only what came before it.
pub fn tls_memory(size: u64, tls_dir: &Path) -> io::Result<f64> {
    let (server_tls, _) = ferry_tls::ServerTls::self_signed(tls_dir).map_err(io::Error::other)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client_tls = ferry_tls::ClientTls::new(
        "127.0.0.1",
        addr.port(),
        ferry_tls::Trust::Fingerprint(server_tls.fingerprint()),
    )
    .map_err(io::Error::other)?;
    let config = server_tls.config();
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let (sock, _) = listener.accept()?;
        let conn = ferry_tls::rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = ferry_tls::rustls::StreamOwned::new(conn, sock);
        let buf = vec![0x5Au8; PIECE];
        let mut left = size;
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            tls.write_all(&buf[..n])?;
            left -= n as u64;
        }
        tls.conn.send_close_notify();
        tls.flush()?;
        Ok(())
    });
    let start = Instant::now();
    let sock = TcpStream::connect(addr)?;
    let conn = client_tls.connect().map_err(io::Error::other)?;
    let mut tls = ferry_tls::rustls::StreamOwned::new(conn, sock);
    let mut buf = vec![0u8; PIECE];
    let mut got = 0u64;
    loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| io::Error::other("the sending thread panicked"))??;
    if got != size {
        return Err(io::Error::other(format!(
            "sent {size} octets inside TLS, received {got}"
        )));
    }
    Ok(seconds)
}

/// The size of every read and write in the baselines (as in ferry's own transfers).
pub const PIECE: usize = 1 << 20;

/// Copies `src` over a fresh loopback connection into `dst`; returns the seconds from
/// connecting to the last octet written to `dst`.
pub fn tcp_copy(src: &Path, dst: &Path) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let src = src.to_owned();
    let sender = std::thread::spawn(move || -> io::Result<u64> {
        let (mut sock, _) = listener.accept()?;
        let mut file = BufReader::with_capacity(PIECE, File::open(src)?);
        io::copy(&mut file, &mut sock)
    });
    let start = Instant::now();
    let mut sock = TcpStream::connect(addr)?;
    let mut out = File::create(dst)?;
    let mut buf = vec![0u8; PIECE];
    let mut got = 0u64;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        got += n as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    let sent = sender
        .join()
        .map_err(|_| io::Error::other("the sending thread panicked"))??;
    if sent != got {
        return Err(io::Error::other(format!(
            "sent {sent} octets, received {got}"
        )));
    }
    Ok(seconds)
}

/// Sends `size` octets from memory to memory over a fresh loopback connection; returns the
/// seconds from connecting to the last octet received.
pub fn tcp_memory(size: u64) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let (mut sock, _) = listener.accept()?;
        let buf = vec![0x5Au8; PIECE];
        let mut left = size;
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            sock.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let start = Instant::now();
    let mut sock = TcpStream::connect(addr)?;
    let mut buf = vec![0u8; PIECE];
    let mut got = 0u64;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| io::Error::other("the sending thread panicked"))??;
    if got != size {
        return Err(io::Error::other(format!(
            "sent {size} octets, received {got}"
        )));
    }
    Ok(seconds)
}

/// Writes `size` octets of `src` (read from the page cache in 1 MiB pieces, as a server reads
/// its socket) into the new file `dst`, fsyncs it, and removes it; returns the seconds to
/// the end of the fsync.
pub fn disk_write(src: &Path, dst: &Path, size: u64) -> io::Result<f64> {
    let mut input = File::open(src)?;
    let mut buf = vec![0u8; PIECE];
    let start = Instant::now();
    let mut out = File::create(dst)?;
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{} is shorter than {size} octets",
                src.display()
            )));
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.sync_all()?;
    let seconds = start.elapsed().as_secs_f64();
    drop(out);
    std::fs::remove_file(dst)?;
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_move_every_octet() -> io::Result<()> {
        let t = tempfile::tempdir()?;
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        crate::data::write_random_file(&src, 3 * PIECE as u64 + 17, 9)?;
        assert!(tcp_copy(&src, &dst)? > 0.0);
        assert_eq!(std::fs::read(&src)?, std::fs::read(&dst)?);
        assert!(tcp_memory(2 * PIECE as u64 + 5)? > 0.0);
        assert!(tls_memory(2 * PIECE as u64 + 5, &t.path().join("tls"))? > 0.0);
        let w = t.path().join("w");
        assert!(disk_write(&src, &w, 3 * PIECE as u64 + 17)? > 0.0);
        assert!(!w.exists(), "the ceiling file is removed");
        assert!(
            disk_write(&src, &w, 4 * PIECE as u64).is_err(),
            "short source"
        );
        Ok(())
    }
}
