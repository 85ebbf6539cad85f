//! Server cases: the runner is the client, the implementation under test a running server.
//!
//! The server's served folder must start empty and writable: the runner creates every file
//! it needs with `put`, under names that start with a prefix unique to the run and the case
//! (`cf<run>-<case>-`), and looks only at the files of its own prefix in listings. ferry has
//! no delete command, so the files stay behind; a later run uses other prefixes.

mod cases;
mod clarified;
mod hooked;
mod replay;

use std::time::{Duration, Instant};

use ferry_wire::{Greeting, Limits};

use crate::case::{CaseInfo, Done, Kind, Res, Stop, Violation, strongest, unimplemented};
use crate::hooks::{Hooks, Touch};
use crate::net::{Conn, Endpoint, resolve};
use crate::spec::{self, Level};

/// The server(s) to test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTarget {
    /// `host:port` of the main server: served folder empty and writable at the start,
    /// any limits.
    pub addr: String,
    /// `host:port` of a read-only server (any folder; the runner only lists it and checks
    /// that uploads are refused and change nothing).
    pub read_only: Option<String>,
    /// `host:port` of further servers with other limits (for example `max-size=10` or
    /// `max-eager=4`, as some example transcripts assume, or short `idle`/`stall` values),
    /// each with an empty writable folder. A case that needs a configuration uses the first
    /// server, the main one included, whose greeting shows it.
    pub extra: Vec<String>,
    /// Longest the runner waits for a server timeout: the idle and stall cases run only
    /// against a server whose `idle`/`stall` is at most this.
    pub max_wait: Duration,
    /// The main server's session limit, if known: the busy case (CONN-3) opens that many
    /// sessions and expects a further connection to be refused with `err 420`.
    pub session_limit: Option<usize>,
    /// What the tester supplies for the cases the wire cannot drive (shutdown, a file that
    /// changes during a get); cases without their hook are `unimplemented`.
    pub hooks: Hooks,
    /// ferry/1 over TLS (spec section 15): every connection to every server of the target
    /// (main, read-only, extras) starts with a TLS handshake made with this configuration, so
    /// they must all be verifiable by it (one pinned key, or one CA), and the TLS cases
    /// (`server/TLS-*`) run. `None`: plain ferry/1, and the TLS cases are `unimplemented`.
    pub tls: Option<ferry_tls::ClientTls>,
    /// The users the server under test knows (`--auth DIR`, made by `ferry conform
    /// auth-setup`): the `auth` cases (`server/AUTH-*`, spec section 16) log in as them on
    /// the first server (main, then extras) whose greeting offers `auth`, over TLS. `None`:
    /// the `auth` cases are `unimplemented`.
    pub auth: Option<std::sync::Arc<crate::auth::Credentials>>,
}

impl ServerTarget {
    /// The main server's address as reports show it: `ferrys://host:port` over TLS.
    pub fn shown(&self) -> String {
        if self.tls.is_some() {
            format!("ferrys://{}", self.addr)
        } else {
            self.addr.clone()
        }
    }

    /// A target with only a main server and the default `max_wait` (5 s).
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            read_only: None,
            extra: Vec::new(),
            max_wait: Duration::from_secs(5),
            session_limit: None,
            hooks: Hooks::default(),
            tls: None,
            auth: None,
        }
    }
}

/// Whether a greeting offers the `auth` extension (section 16).
pub(crate) fn offers_auth(g: &Greeting) -> bool {
    g.extensions()
        .iter()
        .any(|e| e.as_str() == ferry_wire::auth::EXTENSION)
}

/// Whether the case `id` (`server/…`) runs only as the users of `--auth`, on the server that
/// offers `auth` (the `server/AUTH-*` cases and `server/TREE-13/2`).
pub(crate) fn runs_as_users(id: &str) -> bool {
    id.strip_prefix("server/")
        .is_some_and(|id| cases::auth::CASES.iter().any(|(c, ..)| *c == id))
}

/// The example transcripts embedded in the runner.
pub(crate) fn embedded_examples() -> &'static [(&'static str, &'static str)] {
    replay::EMBEDDED
}

/// The context of one running server case.
pub(crate) struct Ctx<'a> {
    pub target: &'a ServerTarget,
    pub addr: Endpoint,
    pub prefix: String,
    pub timeout: Duration,
    pub started: Instant,
    pub soft: Vec<Violation>,
}

impl Ctx<'_> {
    /// The case's deadline.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.timeout
    }

    /// A connection to the main server, greeting checked.
    pub(crate) fn open(&self) -> Res<(Conn, Greeting)> {
        Conn::open(&self.addr, self.deadline())
    }

    /// A connection to the main server, greeting checked and dropped.
    pub(crate) fn session(&self) -> Res<Conn> {
        Ok(self.open()?.0)
    }

    /// A connection to the main server, nothing read.
    pub(crate) fn connect(&self) -> Res<Conn> {
        Conn::connect(&self.addr, self.deadline())
    }

    /// The case's name for `base`: its prefix, then `base`.
    pub(crate) fn name(&self, base: &str) -> Vec<u8> {
        format!("{}{base}", self.prefix).into_bytes()
    }

    /// Records a violation of a SHOULD requirement and goes on; anything else stops.
    pub(crate) fn soft(&mut self, r: Res<()>) -> Res<()> {
        match r {
            Err(Stop::Violation(v)) if spec::level_of(&v.requirement) != Level::Must => {
                self.soft.push(v);
                Ok(())
            }
            other => other,
        }
    }

    /// The first server (main, then extras) whose greeting satisfies `pred`.
    pub(crate) fn server_with(
        &self,
        what: &str,
        pred: impl Fn(&Limits) -> bool,
    ) -> Res<(Endpoint, Greeting)> {
        self.server_greeting(what, |g| pred(g.limits()))
    }

    /// Like [`Ctx::server_with`], for a property of the whole greeting. An extra server
    /// whose greeting offers `auth` serves only the auth cases ([`Ctx::users_server`]):
    /// without a login it serves nothing.
    pub(crate) fn server_greeting(
        &self,
        what: &str,
        pred: impl Fn(&Greeting) -> bool,
    ) -> Res<(Endpoint, Greeting)> {
        self.find_server(what, |g, main| (main || !offers_auth(g)) && pred(g))
    }

    /// The first server (main, then extras) whose greeting offers `auth` (section 16).
    pub(crate) fn users_server(&self, what: &str) -> Res<(Endpoint, Greeting)> {
        self.find_server(what, |g, _| offers_auth(g))
    }

    fn find_server(
        &self,
        what: &str,
        pred: impl Fn(&Greeting, bool) -> bool,
    ) -> Res<(Endpoint, Greeting)> {
        let mut seen = Vec::new();
        for (i, a) in std::iter::once(&self.target.addr)
            .chain(&self.target.extra)
            .enumerate()
        {
            let addr = self.endpoint(a)?;
            let (c, g) = Conn::open(&addr, self.deadline())?;
            let _ = c.close();
            if pred(&g, i == 0) {
                return Ok((addr, g));
            }
            seen.push(a.clone());
        }
        Err(unimplemented(format!(
            "needs a server whose greeting announces {what}; none of {} does (add one with --extra-server)",
            seen.join(", ")
        )))
    }

    /// The touch hook, if given.
    pub(crate) fn touch_hook(&self) -> Res<&crate::hooks::Hook> {
        self.target.hooks.touch.as_ref().ok_or_else(|| {
            unimplemented("needs a hook that changes a file of the served folder (--touch-cmd)")
        })
    }

    /// Runs the touch hook on `name` of the main server's folder.
    pub(crate) fn touch(&self, name: &[u8], how: Touch) -> Res<()> {
        let hook = self.touch_hook()?;
        let name = String::from_utf8_lossy(name);
        hook.run(&[("name", &name), ("how", how.as_str())])
            .map_err(unimplemented)
    }

    /// Whether a shutdown hook was given.
    pub(crate) fn shutdown_hook(&self) -> Res<&crate::hooks::Hook> {
        self.target.hooks.shutdown.as_ref().ok_or_else(|| {
            unimplemented(
                "needs a hook that starts the server's graceful shutdown (--shutdown-cmd)",
            )
        })
    }

    /// The read-only server.
    pub(crate) fn read_only(&self) -> Res<Endpoint> {
        let a =
            self.target.read_only.as_ref().ok_or_else(|| {
                unimplemented("needs a read-only server (--read-only-server ADDR)")
            })?;
        self.endpoint(a)
    }

    /// The server at `a` (`host:port`), reached as the target says (plain or TLS).
    pub(crate) fn endpoint(&self, a: &str) -> Res<Endpoint> {
        let addr = resolve(a).map_err(|e| unimplemented(format!("cannot resolve {a}: {e}")))?;
        Ok(Endpoint {
            addr,
            tls: self.target.tls.clone(),
        })
    }
}

type CaseFn = fn(&mut Ctx<'_>) -> Res<Done>;

/// How a case runs.
pub(crate) enum Body {
    /// Targeted code.
    Code(CaseFn),
    /// A transcript of `spec/examples`, replayed by meaning.
    Example(&'static replay::Example),
}

/// A server case.
pub(crate) struct ServerCase {
    pub info: CaseInfo,
    pub body: Body,
}

/// Every server case, in order: the example transcripts first, then the targeted cases.
pub(crate) fn all() -> Vec<ServerCase> {
    let mut out = Vec::new();
    for ex in replay::examples() {
        if ex.transcript.is_illustrative() {
            continue;
        }
        // The transcripts also cite what their client does, and requirements they show in
        // part only; a server case checks the server's side, in full.
        let requirements: Vec<String> = ex
            .transcript
            .requires
            .iter()
            .filter(|r| {
                !replay::CLIENT_ONLY.contains(&r.as_str()) && !replay::PARTIAL.contains(&r.as_str())
            })
            .cloned()
            .collect();
        out.push(ServerCase {
            info: CaseInfo {
                id: format!("server/examples/{}", ex.stem),
                title: format!("example {}: {}", ex.stem, ex.transcript.title),
                kind: Kind::Server,
                level: strongest(&requirements),
                requirements,
            },
            body: Body::Example(ex),
        });
    }
    // The shutdown cases end the main server: they come last.
    let tables = cases::CASES
        .iter()
        .chain(clarified::CASES)
        .chain(cases::tls::CASES)
        .chain(cases::tree::CASES)
        .chain(cases::auth::CASES)
        .chain(hooked::CASES)
        .chain(hooked::LAST);
    for (id, title, reqs, f) in tables {
        let requirements: Vec<String> = reqs.iter().map(|s| (*s).to_owned()).collect();
        out.push(ServerCase {
            info: CaseInfo {
                id: format!("server/{id}"),
                title: (*title).to_owned(),
                kind: Kind::Server,
                level: strongest(&requirements),
                requirements,
            },
            body: Body::Code(*f),
        });
    }
    out
}

/// Runs one case body.
pub(crate) fn run_case(case: &ServerCase, ctx: &mut Ctx<'_>) -> Res<Done> {
    match &case.body {
        Body::Code(f) => f(ctx),
        Body::Example(ex) => replay::run(ex, ctx),
    }
}
