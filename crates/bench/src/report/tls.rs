//! The TLS part of the report (`--tls`): each case run over TLS next to the same
//! implementation's plain run of it, with their ratio and issue #15's targets, in the terminal
//! table and the Markdown; workload 4's server memory with TLS sessions next to plain ones.

use std::fmt::Write as _;

use super::{CaseResult, Report, TargetCheck, aligned, figure};

/// Issue #15: a large get or put over TLS at least this fraction of the same implementation's
/// plain one (a figure reported, never a test).
pub const TLS_LARGE_TARGET: f64 = 0.85;
/// Issue #15: small files over TLS at least this fraction of the same implementation's plain
/// files per second (a figure reported, never a test).
pub const TLS_SMALL_TARGET: f64 = 0.7;

/// A case over TLS next to the same implementation's plain run of the same case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub(crate) plain: &'a CaseResult,
    pub(crate) tls: &'a CaseResult,
}

/// What a pair compares: a rate (higher is better) or, for workload 4, memory per session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Figures {
    /// `MiB/s`, `files/s` or `KiB/session`.
    pub(super) unit: &'static str,
    /// Plain: the fastest run, the median run.
    pub(super) plain: (f64, f64),
    /// Over TLS: the fastest run, the median run.
    pub(super) tls: (f64, f64),
}

impl Figures {
    /// TLS ÷ plain of the fastest runs and of the medians; `None` when plain has no figure.
    pub(crate) fn ratios(&self) -> Option<(f64, f64)> {
        (self.plain.0 > 0.0 && self.plain.1 > 0.0)
            .then(|| (self.tls.0 / self.plain.0, self.tls.1 / self.plain.1))
    }
}

impl Pair<'_> {
    /// The pair's figures: MiB/s for workload 1, files/s for workload 2, the server's memory
    /// per open session for workload 4 (one run: fastest and median are the same).
    pub(crate) fn figures(&self) -> Figures {
        let rates = |r: &CaseResult| match r.workload.as_str() {
            "large" => (r.best_mib_per_s, r.mib_per_s),
            "idle" => {
                let kib = r.idle.map_or(0.0, |i| i.per_connection_kib);
                (kib, kib)
            }
            _ => (r.best_ops_per_s, r.ops_per_s),
        };
        Figures {
            unit: match self.plain.workload.as_str() {
                "large" => "MiB/s",
                "idle" => "KiB/session",
                _ => "files/s",
            },
            plain: rates(self.plain),
            tls: rates(self.tls),
        }
    }

    /// The target of the pair's ratio, if issue #15 sets one (not for workload 4).
    pub(super) fn target(&self) -> Option<f64> {
        match self.plain.workload.as_str() {
            "large" => Some(TLS_LARGE_TARGET),
            "small" => Some(TLS_SMALL_TARGET),
            _ => None,
        }
    }

    /// `plain 2400 MiB/s, TLS 2100 MiB/s = 0.88× (medians: 2300, 2000 = 0.87×)`.
    fn measured(&self) -> String {
        let f = self.figures();
        match f.ratios() {
            Some((best, median)) => format!(
                "{}: best plain {} {unit}, TLS {} {unit} = {best:.2}× (medians: {}, {} = {median:.2}×)",
                self.plain.label(),
                figure(f.plain.0),
                figure(f.tls.0),
                figure(f.plain.1),
                figure(f.tls.1),
                unit = f.unit,
            ),
            None => format!("{}: no plain figure", self.plain.label()),
        }
    }
}

impl Report {
    /// Every TLS result with the same implementation's plain result of the same case, in the
    /// order they ran.
    pub(crate) fn tls_pairs(&self) -> Vec<Pair<'_>> {
        self.results
            .iter()
            .filter(|r| r.tls)
            .filter_map(|tls| {
                let plain = self.results.iter().find(|p| {
                    !p.tls && p.implementation == tls.implementation && p.same_case(tls)
                })?;
                Some(Pair { plain, tls })
            })
            .collect()
    }

    /// Issue #15's targets, per implementation: large get and put over TLS ≥
    /// [`TLS_LARGE_TARGET`]× plain; small get and put ≥ [`TLS_SMALL_TARGET`]× plain in every
    /// session count and pipeline depth measured (the worst one is shown).
    pub(super) fn tls_checks(&self) -> Vec<TargetCheck> {
        let pairs = self.tls_pairs();
        let mut checks = Vec::new();
        for imp in &self.settings.implementations {
            for (workload, op) in [
                ("large", "get"),
                ("large", "put"),
                ("small", "get"),
                ("small", "put"),
            ] {
                let mine: Vec<&Pair<'_>> = pairs
                    .iter()
                    .filter(|p| {
                        &p.plain.implementation == imp
                            && p.plain.workload == workload
                            && p.plain.op == op
                    })
                    .collect();
                let Some(first) = mine.first() else { continue };
                let Some(target) = first.target() else {
                    continue;
                };
                let goal = if workload == "large" {
                    format!("TLS: large {op} ≥ {target}× plain (same implementation)")
                } else {
                    format!(
                        "TLS: small {op} ≥ {target}× plain files/s, every session count and depth (same implementation)"
                    )
                };
                let failed = mine.iter().find(|p| p.tls.ops == 0 || p.plain.ops == 0);
                let worst = mine
                    .iter()
                    .filter_map(|p| p.figures().ratios().map(|r| (r.0, *p)))
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                let (measured, met) = match (failed, worst) {
                    (Some(p), _) => (
                        format!("{}: a run without a completed operation", p.tls.label()),
                        None,
                    ),
                    (None, Some((ratio, p))) => {
                        let worst = if mine.len() > 1 { "worst: " } else { "" };
                        (format!("{worst}{}", p.measured()), Some(ratio >= target))
                    }
                    (None, None) => (first.measured(), None),
                };
                checks.push(TargetCheck {
                    goal,
                    implementation: imp.clone(),
                    measured,
                    met,
                });
            }
        }
        checks
    }

    /// The terminal table: one row per case, one column per implementation with `plain →
    /// TLS (ratio)` of the fastest runs.
    pub(super) fn tls_table(&self) -> String {
        let pairs = self.tls_pairs();
        let mut s = format!(
            "TLS against plain, same implementation: plain → TLS (TLS ÷ plain) of the fastest \
             runs; targets: large ≥ {TLS_LARGE_TARGET}×, small ≥ {TLS_SMALL_TARGET}×; idle: \
             the server's memory per open session.\n"
        );
        let imps = &self.settings.implementations;
        let mut head = vec!["case".to_owned(), "unit".to_owned()];
        head.extend(imps.iter().cloned());
        let mut rows = vec![head];
        let mut cases: Vec<&CaseResult> = Vec::new();
        for p in &pairs {
            if !cases.iter().any(|c| c.same_case(p.plain)) {
                cases.push(p.plain);
            }
        }
        for c in cases {
            let mut row = vec![c.short_label(), String::new()];
            for imp in imps {
                let p = pairs
                    .iter()
                    .find(|p| &p.plain.implementation == imp && p.plain.same_case(c));
                let Some(p) = p else {
                    row.push("–".to_owned());
                    continue;
                };
                let f = p.figures();
                row[1] = f.unit.to_owned();
                let mut cell = match f.ratios() {
                    Some((best, _)) => {
                        format!("{} → {} ({best:.2}×)", figure(f.plain.0), figure(f.tls.0))
                    }
                    None => format!("– → {}", figure(f.tls.0)),
                };
                let errors = p.plain.errors + p.tls.errors;
                if errors > 0 {
                    let _ = write!(cell, " ({errors} errors)");
                }
                row.push(cell);
            }
            rows.push(row);
        }
        s.push_str(&aligned(&rows, 2, false));
        s
    }

    /// The Markdown section: every pair with its figures, ratios and target; workload 4's
    /// memory side by side.
    pub(super) fn tls_markdown(&self, s: &mut String) {
        let pairs = self.tls_pairs();
        let _ = writeln!(s, "## TLS against plain (same implementation)\n");
        let _ = writeln!(
            s,
            "Each case over TLS ran right after the same implementation's plain run of it: \
             `ferry serve --impl IMPL --tls-self-signed` (TLS 1.3, the key made once per run), \
             the load generator's sessions pinning the key's fingerprint. Ratios: TLS ÷ plain, \
             fastest run against fastest run (medians in parentheses). Issue #15's targets: large \
             get and put ≥ {TLS_LARGE_TARGET}×, small files ≥ {TLS_SMALL_TARGET}×.\n"
        );
        let _ = writeln!(
            s,
            "| implementation | case | unit | plain best · median | TLS best · median | TLS ÷ plain best (median) | target | server CPU s plain · TLS | errors plain · TLS |\n\
             |---|---|---|--:|--:|--:|--:|--:|--:|"
        );
        for p in pairs.iter().filter(|p| p.plain.workload != "idle") {
            let f = p.figures();
            let ratio = f
                .ratios()
                .map_or("–".to_owned(), |(b, m)| format!("{b:.2}× ({m:.2}×)"));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} · {} | {} · {} | {ratio} | {} | {:.2} · {:.2} | {} · {} |",
                p.plain.implementation,
                p.plain.label(),
                f.unit,
                figure(f.plain.0),
                figure(f.plain.1),
                figure(f.tls.0),
                figure(f.tls.1),
                p.target().map_or("–".to_owned(), |t| format!("≥ {t}×")),
                p.plain.server_cpu_s,
                p.tls.server_cpu_s,
                p.plain.errors,
                p.tls.errors,
            );
        }
        s.push('\n');
        let idle: Vec<&Pair<'_>> = pairs.iter().filter(|p| p.plain.idle.is_some()).collect();
        if idle.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "Workload 4, the server's memory with every session open, plain · TLS (each session \
             has done one get; what a TLS session holds is explained in docs/PERFORMANCE.md):\n"
        );
        let _ = writeln!(
            s,
            "| implementation | sessions | RSS open MiB | KiB per session | TLS extra KiB per session | peak MiB | ramp-up s |\n\
             |---|--:|--:|--:|--:|--:|--:|"
        );
        for p in idle {
            let (Some(a), Some(b)) = (p.plain.idle, p.tls.idle) else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {} | {} · {} | {:.1} · {:.1} | {:.1} · {:.1} | {:.1} | {:.1} · {:.1} | {:.2} · {:.2} |",
                p.plain.implementation,
                a.connections,
                b.connections,
                a.rss_open_mib,
                b.rss_open_mib,
                a.per_connection_kib,
                b.per_connection_kib,
                b.per_connection_kib - a.per_connection_kib,
                p.plain.server_peak_rss_mib,
                p.tls.server_peak_rss_mib,
                a.connect_seconds,
                b.connect_seconds,
            );
        }
        s.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Machine, Settings};
    use crate::workloads::IdleMemory;

    /// A result of `imp` for `workload op ×conns`: `rate` MiB/s (large) or files/s (small) in
    /// the median run, `best` in the fastest.
    fn result(
        imp: &str,
        workload: &str,
        op: &str,
        conns: usize,
        tls: bool,
        rate: (f64, f64),
    ) -> CaseResult {
        let (best, median) = rate;
        CaseResult {
            implementation: imp.to_owned(),
            workload: workload.to_owned(),
            op: op.to_owned(),
            connections: conns,
            pipeline: 1,
            tls,
            ops: 100,
            bytes: 0,
            seconds: 1.0,
            runs_seconds: vec![1.0],
            mib_per_s: median,
            ops_per_s: median,
            best_mib_per_s: best,
            best_ops_per_s: best,
            latency: None,
            server_cpu_s: 0.5,
            client_cpu_s: 0.5,
            server_peak_rss_mib: 20.0,
            errors: 0,
            first_error: None,
            idle: None,
        }
    }

    fn idle(imp: &str, tls: bool, kib: f64) -> CaseResult {
        let mut r = result(imp, "idle", "idle-get", 10_000, tls, (0.0, 0.0));
        r.idle = Some(IdleMemory {
            connections: 10_000,
            rss_before_mib: 5.0,
            rss_open_mib: 5.0 + kib * 10_000.0 / 1024.0,
            peak_open_mib: 6.0,
            per_connection_kib: kib,
            connect_seconds: 1.5,
        });
        r
    }

    fn report(results: Vec<CaseResult>) -> Report {
        Report {
            tool: "ferry-bench test".to_owned(),
            started_unix: 0,
            machine: Machine {
                cores: 2,
                cpu: "cpu".to_owned(),
                kernel: "6".to_owned(),
                work_dir: "/dev/shm/x".to_owned(),
                work_fs: "tmpfs".to_owned(),
            },
            settings: Settings {
                implementations: vec!["threads".to_owned(), "tokio".to_owned()],
                clients: vec!["shared".to_owned()],
                large_size: 1 << 30,
                small_ops: 1000,
                small_size: 4096,
                mixed_ops: 0,
                idle_connections: 10_000,
                idle_seconds: 2.0,
                idle_mean_gap_seconds: 1.0,
                repeat: 3,
                tls: true,
                login_sessions: 0,
            },
            notes: vec!["own clients over TLS not measured: no --fingerprint".to_owned()],
            baselines: Vec::new(),
            results,
            own_clients: Vec::new(),
            peers: Vec::new(),
            targets: Vec::new(),
        }
    }

    #[test]
    fn tls_runs_are_set_beside_the_same_implementations_plain_runs() {
        let mut r = report(vec![
            result("threads", "large", "get", 1, false, (2000.0, 1800.0)),
            result("threads", "large", "get", 1, true, (1800.0, 1440.0)),
            result("threads", "large", "put", 1, false, (1000.0, 1000.0)),
            result("threads", "large", "put", 1, true, (800.0, 800.0)),
            result("threads", "small", "get", 1, false, (10_000.0, 10_000.0)),
            result("threads", "small", "get", 1, true, (8000.0, 8000.0)),
            result("threads", "small", "get", 64, false, (20_000.0, 20_000.0)),
            result("threads", "small", "get", 64, true, (12_000.0, 12_000.0)),
            result("tokio", "large", "get", 1, false, (3000.0, 3000.0)),
            result("tokio", "large", "get", 1, true, (2700.0, 2700.0)),
            idle("tokio", false, 10.0),
            idle("tokio", true, 60.0),
        ]);
        let pairs = r.tls_pairs();
        assert_eq!(pairs.len(), 6);
        assert!(pairs.iter().all(|p| !p.plain.tls
            && p.tls.tls
            && p.plain.implementation == p.tls.implementation
            && p.plain.same_case(p.tls)));
        assert_eq!(
            pairs[0].figures().ratios(),
            Some((0.9, 0.8)),
            "best against best, median against median"
        );

        r.check_targets();
        let tls: Vec<&TargetCheck> = r
            .targets
            .iter()
            .filter(|t| t.goal.starts_with("TLS: "))
            .collect();
        let met: Vec<(&str, &str, Option<bool>)> = tls
            .iter()
            .map(|t| (t.goal.as_str(), t.implementation.as_str(), t.met))
            .collect();
        assert_eq!(
            met,
            [
                (
                    "TLS: large get ≥ 0.85× plain (same implementation)",
                    "threads",
                    Some(true)
                ),
                (
                    "TLS: large put ≥ 0.85× plain (same implementation)",
                    "threads",
                    Some(false)
                ),
                (
                    "TLS: small get ≥ 0.7× plain files/s, every session count and depth (same implementation)",
                    "threads",
                    Some(false)
                ),
                (
                    "TLS: large get ≥ 0.85× plain (same implementation)",
                    "tokio",
                    Some(true)
                ),
            ]
        );
        let small = &tls[2].measured;
        assert!(
            small.starts_with(
                "worst: small get ×64: best plain 20000 files/s, TLS 12000 files/s = 0.60×"
            ),
            "{small}"
        );

        let table = r.to_table();
        for needle in [
            "large get ×1 TLS",
            "TLS against plain",
            "2000 → 1800 (0.90×)",
            "3000 → 2700 (0.90×)",
            "KiB/session",
            "10 → 60 (6.00×)",
            "Not measured: own clients over TLS not measured: no --fingerprint.",
        ] {
            assert!(table.contains(needle), "table lacks {needle:?}:\n{table}");
        }
        let md = r.to_markdown();
        for needle in [
            "## TLS against plain (same implementation)",
            "| threads | large put ×1 | MiB/s | 1000 · 1000 | 800 · 800 | 0.80× (0.80×) | ≥ 0.85× |",
            "| tokio | 10000 · 10000 | 102.7 · 590.9 | 10.0 · 60.0 | 50.0 |",
            "| threads | large get TLS | 1 |",
            "## Not measured",
        ] {
            assert!(md.contains(needle), "markdown lacks {needle:?}:\n{md}");
        }

        let panels = crate::plot::panels(&r);
        let tls = panels
            .iter()
            .find(|p| p.title.starts_with("TLS"))
            .expect("a TLS panel");
        assert_eq!(
            tls.categories,
            [
                "large get ×1",
                "large put ×1",
                "small get ×1",
                "small get ×64"
            ]
        );
        assert_eq!(tls.series[0].0, "threads");
        assert_eq!(tls.series[0].1[1], Some(0.8));
        assert_eq!(tls.series[1].1, [Some(0.9), None, None, None]);
        assert_eq!(tls.lines.len(), 2);
        // The plain panels show plain figures only.
        let large = &panels[0];
        assert_eq!(large.series[0].1, [Some(1800.0), Some(1000.0)]);
    }

    #[test]
    fn a_tls_run_without_a_completed_operation_is_not_checked() {
        let mut failed = result("threads", "large", "get", 1, true, (0.0, 0.0));
        failed.ops = 0;
        failed.errors = 1;
        failed.first_error = Some("connect: TLS handshake refused".to_owned());
        let mut r = report(vec![
            result("threads", "large", "get", 1, false, (2000.0, 2000.0)),
            failed,
        ]);
        r.check_targets();
        let tls: Vec<&TargetCheck> = r
            .targets
            .iter()
            .filter(|t| t.goal.starts_with("TLS: "))
            .collect();
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].met, None);
        assert!(
            tls[0].measured.contains("without a completed operation"),
            "{}",
            tls[0].measured
        );
        assert!(r.failed());
        assert!(
            r.to_table().contains(
                "Errors: threads large get ×1 TLS: 1, first: connect: TLS handshake refused"
            ),
            "{}",
            r.to_table()
        );
    }
}
