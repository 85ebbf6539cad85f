//! Reports: human text, JSON (like Autobahn's `index.json`) and JUnit XML.

use std::fmt::Write as _;

use serde::Serialize;

use crate::case::{CaseResult, Kind, Verdict};

/// Counts by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases run (selected).
    pub total: usize,
    /// Verdict `pass`.
    pub pass: usize,
    /// Verdict `fail`.
    pub fail: usize,
    /// Verdict `non-strict`.
    pub non_strict: usize,
    /// Verdict `unimplemented`.
    pub unimplemented: usize,
    /// Verdict `informational`.
    pub informational: usize,
}

impl Summary {
    /// Counts `results`.
    pub fn of(results: &[CaseResult]) -> Self {
        let mut s = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for r in results {
            match r.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail => s.fail += 1,
                Verdict::NonStrict => s.non_strict += 1,
                Verdict::Unimplemented => s.unimplemented += 1,
                Verdict::Informational => s.informational += 1,
            }
        }
        s
    }
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ferry-conform`.
    pub tool: &'static str,
    /// The runner's version.
    pub version: &'static str,
    /// Server or client run.
    pub kind: Kind,
    /// The address or command tested.
    pub target: String,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// Start, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Duration of the run.
    pub duration_ms: u64,
    /// Counts.
    pub summary: Summary,
    /// Every case run, in order.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// Whether any case failed (exit status 1).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }

    /// The JSON report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The closing line of the human report.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{} cases: {} passed, {} failed, {} non-strict, {} unimplemented, {} informational ({:.1} s)",
            s.total,
            s.pass,
            s.fail,
            s.non_strict,
            s.unimplemented,
            s.informational,
            self.duration_ms as f64 / 1000.0
        )
    }

    /// The JUnit XML report: one `testsuite`, one `testcase` per case; `fail` is a
    /// `failure`, `unimplemented` is `skipped`, notes and non-strict findings go to
    /// `system-out`.
    pub fn to_junit(&self) -> String {
        let s = &self.summary;
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let time = self.duration_ms as f64 / 1000.0;
        let _ = writeln!(
            out,
            "<testsuites name=\"ferry-conform\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{time:.3}\">",
            s.total, s.fail, s.unimplemented
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"ferry-conform {} {}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{time:.3}\">",
            self.kind.as_str(),
            xml(&self.target),
            s.total,
            s.fail,
            s.unimplemented
        );
        for r in &self.cases {
            let class =
                r.id.rsplit_once('/')
                    .map_or(r.id.as_str(), |(a, _)| a)
                    .replace('/', ".");
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&class),
                xml(&format!("{} {}", r.id, r.title)),
                r.duration_ms as f64 / 1000.0
            );
            let detail = detail_lines(r).join("\n");
            match r.verdict {
                Verdict::Pass if r.note.is_none() => out.push_str("/>\n"),
                Verdict::Fail => {
                    let msg = format!(
                        "{}: expected {}",
                        r.violated.as_deref().unwrap_or("?"),
                        r.expected.as_deref().unwrap_or("")
                    );
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        xml(&msg),
                        xml(r.violated.as_deref().unwrap_or("fail")),
                        xml(&detail)
                    );
                }
                Verdict::Unimplemented => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml(r.note.as_deref().unwrap_or("unimplemented"))
                    );
                }
                _ => {
                    let _ = write!(
                        out,
                        ">\n      <system-out>{}: {}</system-out>\n    </testcase>\n",
                        r.verdict,
                        xml(&detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Escapes text for XML 1.0 (characters XML cannot carry become U+FFFD).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The indented lines under a case in the human report.
pub fn detail_lines(r: &CaseResult) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &r.requirement_text {
        out.push(format!("requirement {t}"));
    } else if let Some(v) = &r.violated {
        out.push(format!("requirement [{v}]"));
    }
    if let Some(e) = &r.expected {
        out.push(format!("expected: {e}"));
    }
    if let Some(a) = &r.actual {
        out.push(format!("actual:   {a}"));
    }
    if let Some(n) = &r.note {
        out.push(match r.verdict {
            Verdict::Unimplemented => format!("reason: {n}"),
            _ => format!("note: {n}"),
        });
    }
    out
}

/// One case in the human report: a status line, and details unless it simply passed.
pub fn human(r: &CaseResult) -> String {
    let tag = match r.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::NonStrict => "non-strict",
        Verdict::Unimplemented => "unimplemented",
        Verdict::Informational => "info",
    };
    let mut s = format!("  {tag:<13} {:<38} {}", r.id, r.title);
    if r.verdict != Verdict::Pass {
        for l in detail_lines(r) {
            s.push_str("\n                ");
            s.push_str(&l);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Kind;
    use crate::spec::Level;

    fn result(verdict: Verdict) -> CaseResult {
        CaseResult {
            id: "server/GET-4/1".into(),
            title: "a <title> & \"quotes\"".into(),
            kind: Kind::Server,
            level: Level::Must,
            requirements: vec!["GET-4".into()],
            verdict,
            duration_ms: 12,
            violated: (verdict == Verdict::Fail).then(|| "GET-4".into()),
            requirement_text: None,
            expected: Some("err 515".into()),
            actual: Some("ok get 5 \u{1}<x>".into()),
            note: (verdict == Verdict::Unimplemented).then(|| "needs <this>".into()),
        }
    }

    #[test]
    fn junit_and_json_reports_are_well_formed() {
        let cases = vec![
            result(Verdict::Pass),
            result(Verdict::Fail),
            result(Verdict::Unimplemented),
        ];
        let r = Report {
            tool: "ferry-conform",
            version: "0",
            kind: Kind::Server,
            target: "127.0.0.1:1".into(),
            strict: false,
            started_unix: 0,
            duration_ms: 5,
            summary: Summary::of(&cases),
            cases,
        };
        assert!(r.failed());
        let x = r.to_junit();
        assert!(
            x.contains("failures=\"1\"") && x.contains("skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("&lt;title&gt; &amp; &quot;quotes&quot;"), "{x}");
        assert!(!x.contains('\u{1}'), "control characters are replaced");
        assert_eq!(x.matches("<testcase ").count(), 3);
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).expect("JSON");
        assert_eq!(j["summary"]["fail"], 1);
        assert_eq!(j["cases"][1]["verdict"], "fail");
        assert_eq!(j["cases"][2]["verdict"], "unimplemented");
        assert!(r.summary_line().starts_with("3 cases: 1 passed, 1 failed"));
    }
}
