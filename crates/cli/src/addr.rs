//! `ADDR` arguments: `host:port`, `host` (port 7450), `[v6]:port`, `[v6]` or a bare IPv6.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ferry_wire::limits::DEFAULT_PORT;

/// A server address as the user wrote it, split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl ServerAddr {
    /// What `ToSocketAddrs` resolves.
    pub(crate) fn target(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `ADDR` (a clap value parser).
pub(crate) fn parse(s: &str) -> Result<ServerAddr, String> {
    if s.is_empty() {
        return Err("the address is empty".into());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(ServerAddr {
            host: sa.ip().to_string(),
            port: sa.port(),
        });
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ServerAddr {
            host: ip.to_string(),
            port: DEFAULT_PORT,
        });
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ip: IpAddr = inner
            .parse()
            .map_err(|_| format!("{inner:?} is not an IPv6 address"))?;
        return Ok(ServerAddr {
            host: ip.to_string(),
            port: DEFAULT_PORT,
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{port:?} is not a port number"))?;
            (host, port)
        }
        None => (s, DEFAULT_PORT),
    };
    if host.is_empty() || host.contains(':') || host.contains(char::is_whitespace) {
        return Err(format!("{s:?} is not HOST or HOST:PORT"));
    }
    Ok(ServerAddr {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(s: &str) -> (String, u16) {
        let a = parse(s).expect(s);
        (a.host, a.port)
    }

    #[test]
    fn forms() {
        assert_eq!(hp("127.0.0.1:9000"), ("127.0.0.1".into(), 9000));
        assert_eq!(hp("127.0.0.1"), ("127.0.0.1".into(), 7450));
        assert_eq!(hp("localhost"), ("localhost".into(), 7450));
        assert_eq!(hp("files.example:81"), ("files.example".into(), 81));
        assert_eq!(hp("[::1]:81"), ("::1".into(), 81));
        assert_eq!(hp("[::1]"), ("::1".into(), 7450));
        assert_eq!(hp("::1"), ("::1".into(), 7450));
        for bad in ["", "host:", "host:99999", "a b", ":80", "[zz]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("::1").expect("v6").to_string(), "[::1]:7450");
    }
}
