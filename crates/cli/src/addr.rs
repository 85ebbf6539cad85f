//! `ADDR` arguments: `host:port`, `host` (port 7450), `[v6]:port`, `[v6]` or a bare IPv6, each
//! optionally after a scheme (spec TLS-14): `ferrys://` is ferry/1 over TLS (default port
//! 7451), `ferry://` plain ferry/1 (default port 7450); no scheme is plain ferry/1. A user
//! name may come before the host, `ferrys://USER@HOST`: the client then logs in as USER
//! (spec section 16).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ferry_wire::auth::UserName;
use ferry_wire::limits::DEFAULT_PORT;

/// The default port of ferry/1 over TLS (spec TLS-1; `ferry_tls::DEFAULT_TLS_PORT`).
pub(crate) const DEFAULT_TLS_PORT: u16 = 7451;

/// A server address as the user wrote it, split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// ferry/1 over TLS (`ferrys://`); `false`: plain ferry/1 (`ferry://` or no scheme). A
    /// client never falls back from one to the other (TLS-14).
    pub tls: bool,
    /// The user to log in as (`USER@`), if any.
    pub user: Option<UserName>,
}

impl ServerAddr {
    /// What `ToSocketAddrs` resolves.
    pub(crate) fn target(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

/// `host:port` (`[v6]:port`), after `ferrys://` for a TLS address; a plain address is shown
/// without a scheme.
impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            f.write_str("ferrys://")?;
        }
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `ADDR` (the clap value parser of every command's address): as [`parse_any`], but
/// a TLS address is refused until the commands speak TLS (#15), rather than used as a plain
/// one (TLS-14: never fall back from TLS to plain). A command that handles `tls` uses
/// [`parse_any`] (then this refusal goes).
pub(crate) fn parse(s: &str) -> Result<ServerAddr, String> {
    let a = parse_any(s)?;
    if a.user.is_some() {
        return Err(format!("{s}: a user name has no meaning here"));
    }
    if a.tls {
        return Err(format!(
            "{s}: ferry/1 over TLS (ferrys://) is not supported by this command yet"
        ));
    }
    Ok(a)
}

/// Parses `[ferrys:// | ferry://][USER@]HOST[:PORT]`: `tls` from the scheme, the port by
/// default 7451 for `ferrys://` and 7450 otherwise.
pub(crate) fn parse_any(s: &str) -> Result<ServerAddr, String> {
    let (tls, rest) = if let Some(rest) = s.strip_prefix("ferrys://") {
        (true, rest)
    } else if let Some(rest) = s.strip_prefix("ferry://") {
        (false, rest)
    } else if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "{scheme}:// is not a ferry address scheme (ferrys:// for TLS, ferry:// or none for plain)"
        ));
    } else {
        (false, s)
    };
    let (user, rest) = match rest.split_once('@') {
        Some((user, rest)) => {
            let user = UserName::new(user).map_err(|e| format!("{user:?} before @: {e}"))?;
            (Some(user), rest)
        }
        None => (None, rest),
    };
    let (host, port) = host_port(rest.strip_suffix('/').unwrap_or(rest))?;
    let port = port.unwrap_or(if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT });
    Ok(ServerAddr {
        host,
        port,
        tls,
        user,
    })
}

/// `HOST[:PORT]` without a scheme: the host (IPv6 without brackets) and the port if given.
fn host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if s.is_empty() {
        return Err("the address is empty".into());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), Some(sa.port())));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip.to_string(), None));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ip: IpAddr = inner
            .parse()
            .map_err(|_| format!("{inner:?} is not an IPv6 address"))?;
        return Ok((ip.to_string(), None));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{port:?} is not a port number"))?;
            (host, Some(port))
        }
        None => (s, None),
    };
    if host.is_empty()
        || host.contains([':', '/', '[', ']', '@'])
        || host.contains(char::is_whitespace)
    {
        return Err(format!("{s:?} is not HOST or HOST:PORT"));
    }
    Ok((host.to_owned(), port))
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
        assert!(!parse("localhost").expect("plain").tls);
    }

    fn scheme(s: &str) -> (bool, String, u16) {
        let a = parse_any(s).expect(s);
        (a.tls, a.host, a.port)
    }

    #[test]
    fn schemes_choose_tls_and_the_default_port() {
        assert_eq!(
            scheme("ferrys://files.example"),
            (true, "files.example".into(), 7451)
        );
        assert_eq!(
            scheme("ferrys://files.example:9000"),
            (true, "files.example".into(), 9000)
        );
        assert_eq!(
            scheme("ferrys://127.0.0.1"),
            (true, "127.0.0.1".into(), 7451)
        );
        assert_eq!(scheme("ferrys://[::1]"), (true, "::1".into(), 7451));
        assert_eq!(scheme("ferrys://[::1]:81"), (true, "::1".into(), 81));
        assert_eq!(scheme("ferrys://host/"), (true, "host".into(), 7451));
        assert_eq!(
            scheme("ferry://files.example"),
            (false, "files.example".into(), 7450)
        );
        assert_eq!(
            scheme("ferry://127.0.0.1:81"),
            (false, "127.0.0.1".into(), 81)
        );
        assert_eq!(
            scheme("files.example"),
            (false, "files.example".into(), 7450)
        );
        for bad in [
            "ferrys://",
            "ferry://",
            "ferrys://host:",
            "ferrys://host:99999",
            "ferrys://a b",
            "ferrys://host/path",
            "ferrys://[zz]",
            "https://host",
            "ferrys:/host",
            "FERRYS//host",
        ] {
            assert!(parse_any(bad).is_err(), "{bad}");
        }
        let e = parse_any("https://host").expect_err("scheme");
        assert!(e.contains("https://"), "{e}");
        // The commands refuse a TLS address until they speak TLS, never use it as plain.
        let e = parse("ferrys://host").expect_err("not yet");
        assert!(e.contains("ferrys://host"), "{e}");
        assert_eq!(parse("ferry://host:1").expect("plain").port, 1);
    }

    #[test]
    fn a_tls_address_shows_its_scheme_a_plain_one_none() {
        assert_eq!(
            parse_any("ferrys://h").expect("tls").to_string(),
            "ferrys://h:7451"
        );
        assert_eq!(
            parse_any("ferrys://[::1]:9").expect("tls").to_string(),
            "ferrys://[::1]:9"
        );
        assert_eq!(parse_any("ferry://h").expect("plain").to_string(), "h:7450");
        assert_eq!(parse_any("h:1").expect("plain").target(), ("h", 1));
        assert_eq!(parse_any("ferrys://h:2").expect("tls").target(), ("h", 2));
    }

    #[test]
    fn a_user_comes_before_the_host() {
        let a = parse_any("ferrys://alice@files.example").expect("user");
        assert_eq!(a.user.as_ref().map(UserName::as_str), Some("alice"));
        assert_eq!((a.tls, a.target()), (true, ("files.example", 7451)));
        assert_eq!(a.to_string(), "ferrys://alice@files.example:7451");
        let a = parse_any("bob.x-1@[::1]:9").expect("user");
        assert_eq!(a.user.as_ref().map(UserName::as_str), Some("bob.x-1"));
        assert_eq!(a.target(), ("::1", 9));
        for bad in [
            "ferrys://@h",
            "ferrys://a b@h",
            "ferrys://anonymous@h",
            "ferrys://a@b@h",
        ] {
            assert!(parse_any(bad).is_err(), "{bad}");
        }
        // Where no login happens, a user is an error, not ignored.
        assert!(parse("alice@h").is_err());
    }
}
