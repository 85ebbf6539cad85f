//! Cases, verdicts and results.
//!
//! A case checks one or more requirements. While it runs it either stops at a *violation*
//! of one requirement (expected vs actual), stops because the target cannot be tested for it
//! (*unimplemented*), or finishes; on the way it may record *soft* violations of SHOULD
//! requirements without stopping. The verdict follows from the level of the requirement
//! violated (see [`Verdict`]).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::spec::{self, Level};

/// Which side of the protocol a case tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The runner is the client; the implementation under test is a running server.
    Server,
    /// The runner plays a scripted server; the implementation under test is a client command.
    Client,
}

impl Kind {
    /// `server` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

/// The outcome of one case (Autobahn-like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// A MUST requirement was violated, or, with `--strict`, a SHOULD requirement.
    Fail,
    /// Without `--strict`: a SHOULD requirement was violated. Does not fail the run.
    NonStrict,
    /// The case could not run against this target (a configuration it needs was not given,
    /// or the client exited 127: "not supported"). Does not fail the run.
    Unimplemented,
    /// The case only reports something (a MAY behaviour, a value worth knowing).
    Informational,
}

impl Verdict {
    /// The verdict as printed: `pass`, `fail`, `non-strict`, `unimplemented`, `informational`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NonStrict => "non-strict",
            Verdict::Unimplemented => "unimplemented",
            Verdict::Informational => "informational",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A description of a case, as `--list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseInfo {
    /// `server/GET-4/1`, `client/SUM-2/1`, `server/examples/05-pipelining`.
    pub id: String,
    /// What the case does.
    pub title: String,
    /// Server or client case.
    pub kind: Kind,
    /// The strongest level among the requirements it checks.
    pub level: Level,
    /// The requirement IDs it checks.
    pub requirements: Vec<String>,
}

/// One requirement broken: what the case expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The requirement ID.
    pub requirement: String,
    /// What the requirement asks for, in this case.
    pub expected: String,
    /// What the implementation did.
    pub actual: String,
}

/// Why a case stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A requirement was violated.
    Violation(Violation),
    /// The target cannot be tested for this case; the reason says what is missing.
    Unimplemented(String),
}

/// How a case that ran to its end finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Every check held.
    Pass,
    /// Every check held; here is something worth reporting.
    PassWith(String),
    /// The case only reports this.
    Info(String),
}

/// What case bodies return.
pub type Res<T> = Result<T, Stop>;

/// A violation of `requirement`.
pub fn violation(
    requirement: &str,
    expected: impl Into<String>,
    actual: impl Into<String>,
) -> Stop {
    Stop::Violation(Violation {
        requirement: requirement.to_owned(),
        expected: expected.into(),
        actual: actual.into(),
    })
}

/// The target cannot be tested for this case.
pub fn unimplemented(reason: impl Into<String>) -> Stop {
    Stop::Unimplemented(reason.into())
}

/// Fails with a violation of `requirement` unless `cond` holds.
pub fn ensure<S: Into<String>>(
    cond: bool,
    requirement: &str,
    expected: impl Into<String>,
    actual: impl FnOnce() -> S,
) -> Res<()> {
    if cond {
        Ok(())
    } else {
        Err(violation(requirement, expected, actual()))
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    /// The case ID.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Server or client case.
    pub kind: Kind,
    /// The case's level.
    pub level: Level,
    /// The requirements it checks.
    pub requirements: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// How long it ran.
    pub duration_ms: u64,
    /// The requirement found violated (fail, non-strict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violated: Option<String>,
    /// Its level and text, from spec/protocol.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement_text: Option<String>,
    /// What was expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Why the case did not run (unimplemented), or what it reports (informational, pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CaseResult {
    /// Builds the result of a case from how it ended and its soft violations.
    pub(crate) fn from_run(
        info: &CaseInfo,
        outcome: Res<Done>,
        soft: Vec<Violation>,
        strict: bool,
        duration: Duration,
    ) -> Self {
        let mut r = CaseResult {
            id: info.id.clone(),
            title: info.title.clone(),
            kind: info.kind,
            level: info.level,
            requirements: info.requirements.clone(),
            verdict: Verdict::Pass,
            duration_ms: duration.as_millis().try_into().unwrap_or(u64::MAX),
            violated: None,
            requirement_text: None,
            expected: None,
            actual: None,
            note: None,
        };
        let judge = |v: &Violation| match spec::level_of(&v.requirement) {
            Level::Must => Verdict::Fail,
            Level::Should if strict => Verdict::Fail,
            Level::Should => Verdict::NonStrict,
            Level::May => Verdict::Informational,
        };
        let set_violation = |r: &mut CaseResult, v: &Violation| {
            r.verdict = judge(v);
            r.violated = Some(v.requirement.clone());
            r.requirement_text = spec::requirement(&v.requirement)
                .map(|q| format!("[{}] ({}) {}", q.id, q.level, q.text));
            r.expected = Some(v.expected.clone());
            r.actual = Some(v.actual.clone());
        };
        match outcome {
            Err(Stop::Violation(v)) => set_violation(&mut r, &v),
            Err(Stop::Unimplemented(reason)) => {
                r.verdict = Verdict::Unimplemented;
                r.note = Some(reason);
            }
            Ok(done) => {
                match done {
                    Done::Pass => {}
                    Done::PassWith(note) => r.note = Some(note),
                    Done::Info(note) => {
                        r.verdict = Verdict::Informational;
                        r.note = Some(note);
                    }
                }
                // The worst soft violation decides, if any.
                if let Some(v) = soft.iter().min_by_key(|v| match judge(v) {
                    Verdict::Fail => 0,
                    Verdict::NonStrict => 1,
                    _ => 2,
                }) {
                    set_violation(&mut r, v);
                }
            }
        }
        r
    }
}

/// The strongest level among `ids`.
pub(crate) fn strongest(ids: &[String]) -> Level {
    ids.iter()
        .map(|id| spec::level_of(id))
        .min()
        .unwrap_or(Level::May)
}
