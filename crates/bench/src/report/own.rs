//! The own-client part of the report (`--clients own`): each implementation's whole
//! `ferry get`/`ferry put` commands, compared with the TCP copy and with rsync as issue #13's
//! targets do, in the JSON record, the terminal table and the Markdown.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Report, TLS_LARGE_TARGET, TLS_SMALL_TARGET, TargetCheck, aligned, figure};
use crate::units::size_text;

/// One implementation's own client against its own server: one whole `ferry get` or `ferry
/// put` command per run, timed from its start to its exit (`--clients own`).
#[derive(Debug, Clone, Serialize)]
pub struct OwnResult {
    /// `threads`, `tokio`, `async-std`, `smol`: of the server and of the client.
    pub implementation: String,
    /// `large` (workload 1's file) or `small` (workload 2's files in one command).
    pub workload: String,
    /// `get` or `put`.
    pub op: String,
    /// Over TLS (`ferrys://ADDR --fingerprint FP` against `ferry serve --tls-self-signed`).
    pub tls: bool,
    /// The command, with `ADDR` and `DEST` for the run's address and destination.
    pub command: String,
    /// Files moved by one command.
    pub files: u64,
    /// File octets moved by one command.
    pub bytes: u64,
    /// Median seconds over the runs without error (0 when there is none).
    pub seconds: f64,
    /// Seconds of the fastest run.
    pub best_seconds: f64,
    /// Every run's seconds, runs with an error left out.
    pub runs_seconds: Vec<f64>,
    /// File MiB (2^20 octets) per second, from the median.
    pub mib_per_s: f64,
    /// File MiB per second of the fastest run.
    pub best_mib_per_s: f64,
    /// Files per second, from the median.
    pub files_per_s: f64,
    /// Files per second of the fastest run.
    pub best_files_per_s: f64,
    /// Server CPU time, user + system (median run).
    pub server_cpu_s: f64,
    /// The command's CPU time, user + system (median run; clock-tick resolution).
    pub client_cpu_s: f64,
    /// Highest server peak RSS over the runs, MiB.
    pub server_peak_rss_mib: f64,
    /// Runs that failed: non-zero exit, wrong result, or a server that did not stop cleanly.
    pub errors: u64,
    /// The first failure, with the command's stderr.
    pub first_error: Option<String>,
    /// The comparison issue #13's targets make, when this run has the reference.
    pub compared: Option<Comparison>,
}

impl OwnResult {
    /// `large get`, `small put`.
    pub fn label(&self) -> String {
        let tls = if self.tls { " over TLS" } else { "" };
        format!("{} {}{tls}", self.workload, self.op)
    }

    /// The figure a target compares: MiB/s for the large file, files/s for the small ones.
    pub fn rates(&self) -> (f64, f64) {
        if self.workload == "large" {
            (self.best_mib_per_s, self.mib_per_s)
        } else {
            (self.best_files_per_s, self.files_per_s)
        }
    }
}

/// An own-client figure against its reference: the TCP copy for the large file (MiB/s), rsync
/// on one connection for the small files (files/s, from `--peers`); over TLS, the same
/// implementation's plain command.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// `tcp-copy`, `rsync` or `plain`.
    pub reference: String,
    /// What the reference is, e.g. `rsync daemon, 10000 files on 1 connection`.
    pub description: String,
    /// The reference's rate in the fastest run (MiB/s or files/s).
    pub reference_best: f64,
    /// The reference's rate in the median run.
    pub reference_median: f64,
    /// Best run against best run (interference only ever slows a run down).
    pub ratio_best: f64,
    /// Median against median.
    pub ratio_median: f64,
    /// The ratio issue #13 asks for (a figure, never a test).
    pub target: f64,
}

/// Issue #13: each implementation's own `ferry get`/`put` of the large file at least this
/// fraction of the TCP copy.
const OWN_LARGE_TARGET: f64 = 0.9;
/// Issue #13: each implementation's own `ferry get`/`put` of the small files, on one
/// connection, at least this many times rsync's files per second.
const OWN_SMALL_TARGET: f64 = 2.0;

/// A reference figure for the own-client cases.
struct Reference {
    name: String,
    description: String,
    best: f64,
    median: f64,
    target: f64,
}

impl Report {
    /// What an own-client case is compared with, if this run has it: the TCP copy baseline
    /// (large file, MiB/s) or rsync on one connection from the peers (small files, files/s);
    /// over TLS, the same implementation's plain command (`imp`).
    fn own_reference(&self, workload: &str, op: &str, tls: Option<&str>) -> Option<Reference> {
        if let Some(imp) = tls {
            let plain = self.own_clients.iter().find(|r| {
                !r.tls
                    && r.implementation == imp
                    && r.workload == workload
                    && r.op == op
                    && !r.runs_seconds.is_empty()
            })?;
            let (best, median) = plain.rates();
            return Some(Reference {
                name: "plain".to_owned(),
                description: "the same command without TLS".to_owned(),
                best,
                median,
                target: if workload == "large" {
                    TLS_LARGE_TARGET
                } else {
                    TLS_SMALL_TARGET
                },
            });
        }
        if workload == "large" {
            let b = self.baseline("tcp-copy")?;
            if b.best_mib_per_s <= 0.0 || b.mib_per_s <= 0.0 {
                return None;
            }
            return Some(Reference {
                name: "tcp-copy".to_owned(),
                description: format!(
                    "the {} file over one loopback connection, file to file",
                    size_text(b.bytes)
                ),
                best: b.best_mib_per_s,
                median: b.mib_per_s,
                target: OWN_LARGE_TARGET,
            });
        }
        let p = self.peers.iter().find(|p| {
            p.tool == "rsync"
                && p.workload == "small"
                && p.direction == op
                && p.connections == 1
                && p.ok != Some(false)
                && p.files_per_s.is_some_and(|f| f > 0.0)
        })?;
        let median = p.files_per_s?;
        let best = match (p.files, p.min_s) {
            (Some(n), Some(min)) if min > 0.0 => n as f64 / min,
            _ => median,
        };
        Some(Reference {
            name: "rsync".to_owned(),
            description: format!(
                "rsync daemon, {} files on 1 connection (peers.json)",
                p.files.map_or("?".to_owned(), |n| n.to_string())
            ),
            best,
            median,
            target: OWN_SMALL_TARGET,
        })
    }

    /// Fills each own-client result's [`OwnResult::compared`] from this run's references.
    pub(super) fn compare_own(&mut self) {
        let compared: Vec<Option<Comparison>> = self
            .own_clients
            .iter()
            .map(|r| {
                let imp = r.tls.then_some(r.implementation.as_str());
                let reference = self.own_reference(&r.workload, &r.op, imp)?;
                if reference.best <= 0.0 || reference.median <= 0.0 {
                    return None;
                }
                let (best, median) = r.rates();
                Some(Comparison {
                    ratio_best: best / reference.best,
                    ratio_median: median / reference.median,
                    reference: reference.name,
                    description: reference.description,
                    reference_best: reference.best,
                    reference_median: reference.median,
                    target: reference.target,
                })
            })
            .collect();
        for (r, c) in self.own_clients.iter_mut().zip(compared) {
            r.compared = c;
        }
    }

    /// The target checks of the own-client results (issue #13).
    pub(super) fn own_checks(&self) -> Vec<TargetCheck> {
        let mut checks = Vec::new();
        for r in &self.own_clients {
            let (unit, reference, target) = if r.tls {
                let (unit, target) = if r.workload == "large" {
                    ("MiB/s", TLS_LARGE_TARGET)
                } else {
                    ("files/s", TLS_SMALL_TARGET)
                };
                (unit, "plain (same implementation)", target)
            } else if r.workload == "large" {
                ("MiB/s", "the TCP copy", OWN_LARGE_TARGET)
            } else {
                (
                    "files/s",
                    "rsync's files/s on one connection",
                    OWN_SMALL_TARGET,
                )
            };
            let goal = format!("own client: {} ≥ {target}× {reference}", r.label());
            let (best, median) = r.rates();
            let (measured, met) = match &r.compared {
                _ if r.runs_seconds.is_empty() => ("no run without error".to_owned(), None),
                Some(c) => (
                    format!(
                        "best {} {unit} = {:.2}× {} {} (medians: {} = {:.2}× {})",
                        figure(best),
                        c.ratio_best,
                        c.reference,
                        figure(c.reference_best),
                        figure(median),
                        c.ratio_median,
                        figure(c.reference_median),
                    ),
                    Some(c.ratio_best >= target),
                ),
                None if r.tls => (
                    format!("best {} {unit}; no plain run without error", figure(best)),
                    None,
                ),
                None if r.workload == "large" => (
                    format!("best {} {unit}; no TCP copy in this run", figure(best)),
                    None,
                ),
                None => (
                    format!(
                        "best {} {unit}; no rsync figures (run bench/peers.sh, pass --peers)",
                        figure(best)
                    ),
                    None,
                ),
            };
            checks.push(TargetCheck {
                goal,
                implementation: r.implementation.clone(),
                measured,
                met,
            });
        }
        checks
    }

    /// The own-client cases in the order they ran: (workload, op, over TLS) of each, once.
    fn own_cases(&self) -> Vec<(&str, &str, bool)> {
        let mut cases: Vec<(&str, &str, bool)> = Vec::new();
        for r in &self.own_clients {
            let c = (r.workload.as_str(), r.op.as_str(), r.tls);
            if !cases.contains(&c) {
                cases.push(c);
            }
        }
        cases
    }

    /// The terminal table of the own-client cases: a row of best · median per case, under it
    /// a row of the best run's ratio to the reference, with the target.
    pub(super) fn own_table(&self) -> String {
        let st = &self.settings;
        let runs = match st.repeat {
            1 => "one run".to_owned(),
            n => format!("best · median of {n} runs"),
        };
        let mut s = format!(
            "Own clients: `ferry get|put --impl IMPL` against `ferry serve --impl IMPL`, whole \
             commands (process start included); {runs}; ratios of the best runs.\n"
        );
        let imps = &st.implementations;
        let mut head = vec!["own client".to_owned(), "unit".to_owned()];
        head.extend(imps.iter().cloned());
        head.push("reference".to_owned());
        let mut rows = vec![head];
        for (workload, op, tls) in self.own_cases() {
            let (mut label, unit, mut against, mut target) = if workload == "large" {
                (
                    format!("large {op} {}", size_text(st.large_size)),
                    "MiB/s",
                    "tcp-copy",
                    OWN_LARGE_TARGET,
                )
            } else {
                (
                    format!("small {op} {} × {}", st.small_ops, size_text(st.small_size)),
                    "files/s",
                    "rsync",
                    OWN_SMALL_TARGET,
                )
            };
            if tls {
                label.push_str(" TLS");
                against = "plain";
                target = if workload == "large" {
                    TLS_LARGE_TARGET
                } else {
                    TLS_SMALL_TARGET
                };
            }
            // Over TLS each implementation has its own reference: its plain command.
            let reference = if tls {
                None
            } else {
                self.own_reference(workload, op, None)
            };
            let mut row = vec![label, unit.to_owned()];
            let mut ratios = vec![format!("  ÷ {against} (target ≥ {target}×)"), String::new()];
            for imp in imps {
                let r = self.own_clients.iter().find(|r| {
                    &r.implementation == imp && r.workload == workload && r.op == op && r.tls == tls
                });
                let Some(r) = r else {
                    row.push("–".to_owned());
                    ratios.push("–".to_owned());
                    continue;
                };
                let (best, median) = r.rates();
                let mut cell = if r.runs_seconds.is_empty() {
                    "–".to_owned()
                } else if st.repeat == 1 {
                    figure(best)
                } else {
                    format!("{} · {}", figure(best), figure(median))
                };
                if r.errors > 0 {
                    let _ = write!(cell, " ({} errors)", r.errors);
                }
                row.push(cell);
                ratios.push(match &r.compared {
                    Some(c) if !r.runs_seconds.is_empty() => format!("{:.2}×", c.ratio_best),
                    _ => "–".to_owned(),
                });
            }
            row.push(match &reference {
                _ if tls => "plain, same implementation".to_owned(),
                Some(r) => format!("{} {} · {}", r.name, figure(r.best), figure(r.median)),
                None if workload == "large" => "no TCP copy in this run".to_owned(),
                None => "rsync: pass --peers (bench/peers.sh)".to_owned(),
            });
            ratios.push(String::new());
            rows.push(row);
            rows.push(ratios);
        }
        s.push_str(&aligned(&rows, 2, true));
        s
    }

    /// The Markdown section of the own-client cases.
    pub(super) fn own_markdown(&self, s: &mut String) {
        let st = &self.settings;
        let _ = writeln!(s, "## Own clients (whole commands)\n");
        let _ = writeln!(
            s,
            "Each implementation's own client against its own server: `ferry get` or `ferry put \
             --impl IMPL` against a fresh `ferry serve --impl IMPL`, one whole command per run, \
             timed from its start to its exit (process start included), its result checked \
             (every file present with its size). Workload 1's file; workload 2's {} files of {} \
             in one command, pipelined on one session. {} Ratios: best run against best run \
             (medians in parentheses). Issue #13's targets: large get and put ≥ {OWN_LARGE_TARGET}× \
             the TCP copy; small get and put ≥ {OWN_SMALL_TARGET}× rsync's files per second on one \
             connection.\n",
            st.small_ops,
            size_text(st.small_size),
            match st.repeat {
                1 => "One run per case; runs that failed are left out of the figures.".to_owned(),
                n => format!("{n} runs per case; runs that failed are left out of the figures."),
            }
        );
        let _ = writeln!(
            s,
            "| implementation | case | command | MiB/s best · median | files/s best · median | seconds (median) | reference best · median | ratio best (median) | target | server CPU s | client CPU s | server peak RSS MiB | errors |\n\
             |---|---|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|"
        );
        for (workload, op, tls) in self.own_cases() {
            for r in self
                .own_clients
                .iter()
                .filter(|r| r.workload == workload && r.op == op && r.tls == tls)
            {
                let (reference, ratio, target) = match &r.compared {
                    Some(c) => (
                        format!(
                            "{} {} · {} ({})",
                            c.reference,
                            figure(c.reference_best),
                            figure(c.reference_median),
                            c.description
                        ),
                        format!("{:.2}× ({:.2}×)", c.ratio_best, c.ratio_median),
                        format!("≥ {}×", c.target),
                    ),
                    None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | `{}` | {} · {} | {} · {} | {:.3} | {reference} | {ratio} | {target} | {:.2} | {:.2} | {:.1} | {} |",
                    r.implementation,
                    r.label(),
                    r.command,
                    figure(r.best_mib_per_s),
                    figure(r.mib_per_s),
                    figure(r.best_files_per_s),
                    figure(r.files_per_s),
                    r.seconds,
                    r.server_cpu_s,
                    r.client_cpu_s,
                    r.server_peak_rss_mib,
                    r.errors
                );
            }
        }
        s.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Baseline, Machine, PeerResult, Settings};
    use crate::units::MIB;

    fn own(imp: &str, workload: &str, op: &str, runs: &[f64]) -> OwnResult {
        let (files, bytes) = if workload == "large" {
            (1, 100 << 20)
        } else {
            (1000, 1000 * 4096)
        };
        let best = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let median = crate::stats::median(runs);
        OwnResult {
            implementation: imp.to_owned(),
            workload: workload.to_owned(),
            op: op.to_owned(),
            tls: false,
            command: format!("ferry {op} --impl {imp} ADDR …"),
            files,
            bytes,
            seconds: median,
            best_seconds: best,
            runs_seconds: runs.to_vec(),
            mib_per_s: bytes as f64 / MIB / median,
            best_mib_per_s: bytes as f64 / MIB / best,
            files_per_s: files as f64 / median,
            best_files_per_s: files as f64 / best,
            server_cpu_s: 0.0,
            client_cpu_s: 0.0,
            server_peak_rss_mib: 10.0,
            errors: 0,
            first_error: None,
            compared: None,
        }
    }

    fn report(own_clients: Vec<OwnResult>, peers: Vec<PeerResult>) -> Report {
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
                clients: vec!["own".to_owned()],
                large_size: 100 << 20,
                small_ops: 1000,
                small_size: 4096,
                mixed_ops: 0,
                idle_connections: 0,
                idle_seconds: 0.0,
                idle_mean_gap_seconds: 0.0,
                repeat: 3,
                tls: false,
                login_sessions: 0,
            },
            notes: Vec::new(),
            baselines: vec![Baseline {
                name: "tcp-copy".to_owned(),
                description: "copy".to_owned(),
                bytes: 100 << 20,
                seconds: 0.1,
                runs_seconds: vec![0.1, 0.1, 0.05, 0.2],
                mib_per_s: 1000.0,
                best_mib_per_s: 2000.0,
            }],
            results: Vec::new(),
            own_clients,
            peers,
            targets: Vec::new(),
        }
    }

    fn rsync(direction: &str) -> PeerResult {
        PeerResult {
            tool: "rsync".to_owned(),
            implementation: None,
            workload: "small".to_owned(),
            direction: direction.to_owned(),
            connections: 1,
            files: Some(10_000),
            median_s: Some(2.0),
            min_s: Some(1.0),
            mb_per_s: Some(20.0),
            files_per_s: Some(5000.0),
            ok: Some(true),
            note: None,
        }
    }

    #[test]
    fn own_clients_are_compared_with_the_tcp_copy_and_rsync() {
        let mut r = report(
            vec![
                // 100 MiB: best 0.05 s = 2000 MiB/s (1.0× the best TCP copy), median 0.1 s.
                own("threads", "large", "get", &[0.1, 0.05, 0.2]),
                own("tokio", "large", "get", &[0.2, 0.2, 0.2]),
                // 1000 files: best 0.02 s = 50,000 files/s against rsync's best 10,000.
                own("threads", "small", "get", &[0.02, 0.04, 0.04]),
                own("tokio", "small", "get", &[1.0, 1.0, 1.0]),
            ],
            vec![rsync("get")],
        );
        r.check_targets();
        let c = r.own_clients[0].compared.clone().expect("large compared");
        assert_eq!(c.reference, "tcp-copy");
        assert!((c.ratio_best - 1.0).abs() < 1e-9, "{c:?}");
        assert!((c.ratio_median - 1.0).abs() < 1e-9, "{c:?}");
        let c = r.own_clients[2].compared.clone().expect("small compared");
        assert_eq!(c.reference, "rsync");
        // rsync's best run: 10,000 files in its min_s of 1 s.
        assert!((c.reference_best - 10_000.0).abs() < 1e-9, "{c:?}");
        assert!((c.ratio_best - 5.0).abs() < 1e-9, "{c:?}");
        assert!((c.ratio_median - 5.0).abs() < 1e-9, "{c:?}");
        let met: Vec<(&str, &str, Option<bool>)> = r
            .targets
            .iter()
            .map(|t| (t.goal.as_str(), t.implementation.as_str(), t.met))
            .collect();
        assert_eq!(
            met,
            [
                (
                    "own client: large get ≥ 0.9× the TCP copy",
                    "threads",
                    Some(true)
                ),
                (
                    "own client: large get ≥ 0.9× the TCP copy",
                    "tokio",
                    Some(false)
                ),
                (
                    "own client: small get ≥ 2× rsync's files/s on one connection",
                    "threads",
                    Some(true)
                ),
                (
                    "own client: small get ≥ 2× rsync's files/s on one connection",
                    "tokio",
                    Some(false)
                ),
            ]
        );

        let table = r.to_table();
        assert!(
            !table.contains("case "),
            "no shared table without results:\n{table}"
        );
        for needle in [
            "own client",
            "large get 100 MiB",
            "2000 · 1000",
            "tcp-copy 2000 · 1000",
            "÷ tcp-copy (target ≥ 0.9×)",
            "small get 1000 × 4 KiB",
            "50000 · 25000",
            "rsync 10000 · 5000",
            "5.00×",
            "0.10×",
        ] {
            assert!(table.contains(needle), "table lacks {needle:?}:\n{table}");
        }
        let md = r.to_markdown();
        assert!(md.contains("## Own clients"), "{md}");
        assert!(!md.contains("## Results"), "{md}");
        assert!(md.contains("| 5.00× (5.00×) | ≥ 2× |"), "{md}");
    }

    #[test]
    fn own_clients_over_tls_are_compared_with_their_plain_commands() {
        let tls = |imp: &str, runs: &[f64]| {
            let mut r = own(imp, "large", "get", runs);
            r.tls = true;
            r
        };
        let mut r = report(
            vec![
                own("threads", "large", "get", &[0.1, 0.05, 0.2]),
                tls("threads", &[0.1, 0.1, 0.1]),
                own("tokio", "large", "get", &[0.2]),
                tls("tokio", &[0.2]),
            ],
            Vec::new(),
        );
        r.check_targets();
        let c = r.own_clients[1].compared.clone().expect("compared");
        assert_eq!(c.reference, "plain");
        assert!((c.ratio_best - 0.5).abs() < 1e-9, "{c:?}");
        assert!((c.ratio_median - 1.0).abs() < 1e-9, "{c:?}");
        assert_eq!(c.target, TLS_LARGE_TARGET);
        let c = r.own_clients[3].compared.clone().expect("compared");
        assert!((c.ratio_best - 1.0).abs() < 1e-9, "{c:?}");
        let met: Vec<(&str, &str, Option<bool>)> = r
            .targets
            .iter()
            .filter(|t| t.goal.contains("TLS"))
            .map(|t| (t.goal.as_str(), t.implementation.as_str(), t.met))
            .collect();
        assert_eq!(
            met,
            [
                (
                    "own client: large get over TLS ≥ 0.85× plain (same implementation)",
                    "threads",
                    Some(false)
                ),
                (
                    "own client: large get over TLS ≥ 0.85× plain (same implementation)",
                    "tokio",
                    Some(true)
                ),
            ]
        );
        let table = r.to_table();
        for needle in ["large get 100 MiB TLS", "÷ plain (target ≥ 0.85×)", "0.50×"] {
            assert!(table.contains(needle), "table lacks {needle:?}:\n{table}");
        }
    }

    #[test]
    fn own_clients_without_references_or_runs_are_not_checked() {
        let mut failed = own("tokio", "small", "put", &[]);
        failed.errors = 3;
        failed.first_error = Some("`ferry put` exited with 3: boom".to_owned());
        let mut r = report(
            vec![own("threads", "small", "put", &[0.1]), failed],
            Vec::new(),
        );
        r.check_targets();
        assert!(r.own_clients.iter().all(|o| o.compared.is_none()));
        assert!(r.targets.iter().all(|t| t.met.is_none()), "{:?}", r.targets);
        assert!(r.failed());
        let table = r.to_table();
        assert!(table.contains("– (3 errors)"), "{table}");
        assert!(table.contains("rsync: pass --peers"), "{table}");
        assert!(table.contains("Errors: tokio own client small put: 3 of 3 runs, first: `ferry put` exited with 3: boom"), "{table}");
        assert!(r.to_markdown().contains("## Errors"));
    }
}
