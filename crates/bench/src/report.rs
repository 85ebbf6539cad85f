//! The report: one JSON document (the record), rendered as Markdown tables and an SVG plot.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::Latency;
use crate::units::{MIB, size_text};
use crate::workloads::IdleMemory;

/// Everything one `ferry bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ferry-bench <version>`.
    pub tool: String,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Where it ran.
    pub machine: Machine,
    /// What was asked.
    pub settings: Settings,
    /// The ceilings, measured in the same run.
    pub baselines: Vec<Baseline>,
    /// One entry per implementation and workload case (the shared load generator).
    pub results: Vec<CaseResult>,
    /// One entry per implementation and whole-command case (`--clients own`).
    pub own_clients: Vec<OwnResult>,
    /// Other tools' figures for workloads 1 and 2 (from `bench/peers.sh`), when given.
    pub peers: Vec<PeerResult>,
    /// The goals of issues #7 and #13, checked against the figures.
    pub targets: Vec<TargetCheck>,
}

/// The machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cores: usize,
    /// From /proc/cpuinfo.
    pub cpu: String,
    /// `uname -r`.
    pub kernel: String,
    /// The work folder (served folders and client destinations).
    pub work_dir: String,
    /// Its file system (`tmpfs`, `ext4`, …).
    pub work_fs: String,
}

/// The settings of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Implementations measured.
    pub implementations: Vec<String>,
    /// Whose clients drove them: `shared` (the bench's load generator), `own` (each
    /// implementation's `ferry get`/`ferry put`).
    pub clients: Vec<String>,
    /// Size of workload 1's file, octets.
    pub large_size: u64,
    /// Operations of workload 2.
    pub small_ops: usize,
    /// Size of workload 2's files, octets.
    pub small_size: u64,
    /// Operations of workload 3.
    pub mixed_ops: usize,
    /// Sessions of workload 4.
    pub idle_connections: usize,
    /// Measured phase of workload 4, seconds.
    pub idle_seconds: f64,
    /// Mean gap between two gets of one idle session, seconds.
    pub idle_mean_gap_seconds: f64,
    /// Runs per case (workloads 1–3; workload 4 runs once).
    pub repeat: usize,
}

/// One ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// `tcp-copy`, `tcp-memory`, `disk-write`.
    pub name: String,
    /// What it measures.
    pub description: String,
    /// Octets moved.
    pub bytes: u64,
    /// Median seconds over every run.
    pub seconds: f64,
    /// Every run's seconds: half measured before the implementations, half after.
    pub runs_seconds: Vec<f64>,
    /// MiB (2^20 octets) per second, from the median.
    pub mib_per_s: f64,
    /// MiB per second, from the fastest run.
    pub best_mib_per_s: f64,
}

/// One implementation under one workload case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// `threads`, `tokio`, `async-std`, `smol`.
    pub implementation: String,
    /// `large`, `small`, `mixed`, `idle`.
    pub workload: String,
    /// `get`, `put`, `mixed`, `idle-get`.
    pub op: String,
    /// Concurrent sessions.
    pub connections: usize,
    /// Requests sent at once on each session (1: one at a time).
    pub pipeline: usize,
    /// Operations completed (median run).
    pub ops: u64,
    /// File octets moved (median run).
    pub bytes: u64,
    /// Seconds of the median run.
    pub seconds: f64,
    /// Every run's seconds.
    pub runs_seconds: Vec<f64>,
    /// File MiB (2^20 octets) per second (median run).
    pub mib_per_s: f64,
    /// Operations per second (median run).
    pub ops_per_s: f64,
    /// File MiB per second of the fastest run.
    pub best_mib_per_s: f64,
    /// Operations per second of the fastest run.
    pub best_ops_per_s: f64,
    /// Per-operation latency (median run).
    pub latency: Option<Latency>,
    /// Server CPU time, user + system (median run).
    pub server_cpu_s: f64,
    /// Load generator CPU time (median run).
    pub client_cpu_s: f64,
    /// Highest server peak RSS over the runs, MiB.
    pub server_peak_rss_mib: f64,
    /// Failed operations over every run.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Workload 4's memory readings.
    pub idle: Option<IdleMemory>,
}

impl CaseResult {
    /// `small get ×64 (32 deep)`-style label.
    pub fn label(&self) -> String {
        format!(
            "{} {} ×{}{}",
            self.workload,
            self.op,
            self.connections,
            self.depth_text()
        )
    }

    /// `large get ×1`, `small put ×8 (32 deep)`, `mixed ×16`, `idle ×1000`.
    pub fn short_label(&self) -> String {
        match self.workload.as_str() {
            "mixed" | "idle" => format!("{} ×{}", self.workload, self.connections),
            _ => self.label(),
        }
    }

    /// ` (32 deep)` for pipelined cases, else nothing.
    pub fn depth_text(&self) -> String {
        if self.pipeline > 1 {
            format!(" ({} deep)", self.pipeline)
        } else {
            String::new()
        }
    }
}

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
        format!("{} {}", self.workload, self.op)
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
/// on one connection for the small files (files/s, from `--peers`).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// `tcp-copy` or `rsync`.
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

/// One figure of another tool, from `bench/peers.sh`'s `peers.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerResult {
    /// The tool (`nginx+curl`, `vsftpd+curl`, `rsync`, `sftp`, `ferry`).
    pub tool: String,
    /// For ferry's own CLI rows: the implementation.
    #[serde(default, rename = "impl")]
    pub implementation: Option<String>,
    /// `large` or `small`.
    pub workload: String,
    /// `get` or `put`.
    pub direction: String,
    /// Concurrent sessions.
    pub connections: usize,
    /// Files moved.
    #[serde(default)]
    pub files: Option<u64>,
    /// Median seconds of the whole commands.
    #[serde(default)]
    pub median_s: Option<f64>,
    /// Seconds of the fastest run.
    #[serde(default)]
    pub min_s: Option<f64>,
    /// MiB/s (10^6 octets: peers.sh's unit; shown as MiB/s by [`PeerResult::mib_per_s`]).
    #[serde(default)]
    pub mb_per_s: Option<f64>,
    /// Files per second.
    #[serde(default)]
    pub files_per_s: Option<f64>,
    /// Whether the tool produced the right octets.
    #[serde(default)]
    pub ok: Option<bool>,
    /// Why not, or what to know.
    #[serde(default)]
    pub note: Option<String>,
}

impl PeerResult {
    /// The rate in MiB/s, the unit of the rest of the report.
    pub fn mib_per_s(&self) -> Option<f64> {
        self.mb_per_s.map(|v| v * 1e6 / MIB)
    }
}

/// One goal, checked.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The goal.
    pub goal: String,
    /// For which implementation.
    pub implementation: String,
    /// The figure, as text.
    pub measured: String,
    /// `Some(met)`, or `None` when this run cannot tell (say why in `measured`).
    pub met: Option<bool>,
}

impl Report {
    /// The result of `imp` under `workload`/`op` with `connections` sessions.
    pub fn find(
        &self,
        imp: &str,
        workload: &str,
        op: &str,
        connections: Option<usize>,
    ) -> Option<&CaseResult> {
        self.find_deep(imp, workload, op, connections, 1)
    }

    /// [`Report::find`] with pipeline depth `depth`.
    pub fn find_deep(
        &self,
        imp: &str,
        workload: &str,
        op: &str,
        connections: Option<usize>,
        depth: usize,
    ) -> Option<&CaseResult> {
        self.results.iter().find(|r| {
            r.implementation == imp
                && r.workload == workload
                && r.op == op
                && r.pipeline == depth
                && connections.is_none_or(|c| r.connections == c)
        })
    }

    /// The baseline called `name`.
    pub fn baseline(&self, name: &str) -> Option<&Baseline> {
        self.baselines.iter().find(|b| b.name == name)
    }

    /// Whether any operation (shared load generator) or command (own clients) failed.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.errors > 0) || self.own_clients.iter().any(|r| r.errors > 0)
    }

    /// What an own-client case is compared with, if this run has it: the TCP copy baseline
    /// (large file, MiB/s) or rsync on one connection from the peers (small files, files/s).
    fn own_reference(&self, workload: &str, op: &str) -> Option<Reference> {
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
    fn compare_own(&mut self) {
        let compared: Vec<Option<Comparison>> = self
            .own_clients
            .iter()
            .map(|r| {
                let reference = self.own_reference(&r.workload, &r.op)?;
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
    fn own_checks(&self) -> Vec<TargetCheck> {
        let mut checks = Vec::new();
        for r in &self.own_clients {
            let (unit, reference, target) = if r.workload == "large" {
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

    /// Fills [`Report::targets`] from the figures (and each own-client result's comparison).
    pub fn check_targets(&mut self) {
        self.compare_own();
        let mut checks = Vec::new();
        for imp in &self.settings.implementations {
            ratio_check(
                &mut checks,
                imp,
                "workload 1 get ≥ 80 % of the TCP copy",
                self.find(imp, "large", "get", None),
                self.baseline("tcp-copy"),
            );
            ratio_check(
                &mut checks,
                imp,
                "workload 1 put ≥ 80 % of disk write + fsync",
                self.find(imp, "large", "put", None),
                self.baseline("disk-write"),
            );
            for op in ["get", "put"] {
                // The implementation at its best: whichever pipeline depth was faster.
                let Some(r) = self
                    .results
                    .iter()
                    .filter(|r| {
                        r.implementation == *imp
                            && r.workload == "small"
                            && r.op == op
                            && r.connections == 64
                    })
                    .max_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s))
                else {
                    continue;
                };
                let best = self
                    .peers
                    .iter()
                    .filter(|p| {
                        p.tool != "ferry"
                            && p.workload == "small"
                            && p.direction == op
                            && p.connections == 64
                            && p.ok != Some(false)
                    })
                    .filter_map(|p| p.files_per_s.map(|f| (f, p.tool.clone())))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let goal = format!("workload 2 {op} ×64 ahead of every peer");
                checks.push(match best {
                    Some((f, tool)) => TargetCheck {
                        goal,
                        implementation: imp.clone(),
                        measured: format!(
                            "{:.0} files/s{} vs best peer {tool} {f:.0} files/s",
                            r.ops_per_s,
                            r.depth_text()
                        ),
                        met: Some(r.ops_per_s > f),
                    },
                    None => TargetCheck {
                        goal,
                        implementation: imp.clone(),
                        measured: format!(
                            "{:.0} files/s; no peer figures (run bench/peers.sh, pass --peers)",
                            r.ops_per_s
                        ),
                        met: None,
                    },
                });
            }
            if imp != "threads"
                && let Some(r) = self.find(imp, "idle", "idle-get", None)
            {
                let goal = "workload 4: 10,000 idle sessions under 200 MiB RSS".to_owned();
                let n = r.idle.map_or(0, |i| i.connections);
                checks.push(if n >= 10_000 {
                    TargetCheck {
                        goal,
                        implementation: imp.clone(),
                        measured: format!(
                            "peak {:.1} MiB with {n} sessions",
                            r.server_peak_rss_mib
                        ),
                        met: Some(r.server_peak_rss_mib < 200.0),
                    }
                } else {
                    TargetCheck {
                        goal,
                        implementation: imp.clone(),
                        measured: format!(
                            "peak {:.1} MiB with {n} sessions (run --idle-conns 10000 to check)",
                            r.server_peak_rss_mib
                        ),
                        met: None,
                    }
                });
            }
        }
        checks.extend(self.own_checks());
        self.targets = checks;
    }

    /// A summary for the terminal: one aligned row per case, one column per implementation
    /// with the case's main figure, then the ceilings, the targets and any errors. Units are
    /// said once, in the heading.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let runs = match self.settings.repeat {
            1 => "one run per case".to_owned(),
            n => format!("median of {n} runs"),
        };
        let _ = writeln!(
            s,
            "{} on {} cores ({}), Linux {}, folders on {}; {runs}.",
            self.tool, m.cores, m.cpu, m.kernel, m.work_fs
        );
        let _ = writeln!(
            s,
            "Rates in MiB/s and sizes in MiB (1 MiB = 2^20 octets); small files and mixed \
             operations per second; idle: the server's peak memory.\n"
        );
        let imps = &self.settings.implementations;
        let mut cases: Vec<&CaseResult> = Vec::new();
        for r in &self.results {
            if !cases.iter().any(|c| {
                (
                    c.workload.as_str(),
                    c.op.as_str(),
                    c.connections,
                    c.pipeline,
                ) == (
                    r.workload.as_str(),
                    r.op.as_str(),
                    r.connections,
                    r.pipeline,
                )
            }) {
                cases.push(r);
            }
        }
        cases.sort_by_key(|r| {
            (
                workload_rank(&r.workload),
                r.op.clone(),
                r.pipeline,
                r.connections,
            )
        });
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut head = vec!["case".to_owned(), "unit".to_owned()];
        head.extend(imps.iter().cloned());
        rows.push(head);
        for c in &cases {
            let unit = match c.workload.as_str() {
                "large" => "MiB/s",
                "small" => "files/s",
                "idle" => "peak MiB",
                _ => "ops/s",
            };
            let mut row = vec![c.short_label(), unit.to_owned()];
            for imp in imps {
                let r = self.results.iter().find(|r| {
                    &r.implementation == imp
                        && (
                            r.workload.as_str(),
                            r.op.as_str(),
                            r.connections,
                            r.pipeline,
                        ) == (
                            c.workload.as_str(),
                            c.op.as_str(),
                            c.connections,
                            c.pipeline,
                        )
                });
                row.push(match r {
                    None => "–".to_owned(),
                    Some(r) => {
                        let v = match c.workload.as_str() {
                            "large" => r.mib_per_s,
                            "idle" => r.server_peak_rss_mib,
                            _ => r.ops_per_s,
                        };
                        let figure = if v >= 10.0 {
                            format!("{v:.0}")
                        } else {
                            format!("{v:.1}")
                        };
                        if r.errors > 0 {
                            format!("{figure} ({} errors)", r.errors)
                        } else {
                            figure
                        }
                    }
                });
            }
            rows.push(row);
        }
        if !cases.is_empty() {
            s.push_str(&aligned(&rows, 2, false));
        }
        if !self.own_clients.is_empty() {
            if !cases.is_empty() {
                s.push('\n');
            }
            s.push_str(&self.own_table());
        }
        if !self.baselines.is_empty() {
            let b: Vec<String> = self
                .baselines
                .iter()
                .map(|b| format!("{} {:.0}", b.name, b.mib_per_s))
                .collect();
            let _ = writeln!(s, "\nCeilings (MiB/s): {}.", b.join(", "));
        }
        if !self.targets.is_empty() {
            let met = self.targets.iter().filter(|t| t.met == Some(true)).count();
            let mut line = format!("Targets: {met} of {} met", self.targets.len());
            // Each goal once, with the implementations that missed it (figures in report.md).
            for (what, label) in [(Some(false), "not met"), (None, "not checked")] {
                let mut goals: Vec<(&str, Vec<&str>)> = Vec::new();
                for t in self.targets.iter().filter(|t| t.met == what) {
                    match goals.iter_mut().find(|(g, _)| *g == t.goal) {
                        Some((_, imps)) => imps.push(&t.implementation),
                        None => goals.push((&t.goal, vec![&t.implementation])),
                    }
                }
                for (goal, imps) in goals {
                    let _ = write!(line, "\n  {label}: {goal} ({})", imps.join(", "));
                }
            }
            let _ = writeln!(s, "{line}");
        }
        for r in self.results.iter().filter(|r| r.errors > 0) {
            let _ = writeln!(
                s,
                "Errors: {} {}: {}, first: {}",
                r.implementation,
                r.label(),
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            );
        }
        for r in self.own_clients.iter().filter(|r| r.errors > 0) {
            let _ = writeln!(
                s,
                "Errors: {} own client {}: {} of {} runs, first: {}",
                r.implementation,
                r.label(),
                r.errors,
                r.errors as usize + r.runs_seconds.len(),
                r.first_error.as_deref().unwrap_or("?")
            );
        }
        s
    }

    /// The own-client cases in the order they ran: (workload, op) of each, once.
    fn own_cases(&self) -> Vec<(&str, &str)> {
        let mut cases: Vec<(&str, &str)> = Vec::new();
        for r in &self.own_clients {
            let c = (r.workload.as_str(), r.op.as_str());
            if !cases.contains(&c) {
                cases.push(c);
            }
        }
        cases
    }

    /// The terminal table of the own-client cases: a row of best · median per case, under it
    /// a row of the best run's ratio to the reference, with the target.
    fn own_table(&self) -> String {
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
        for (workload, op) in self.own_cases() {
            let (label, unit, against, target) = if workload == "large" {
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
            let reference = self.own_reference(workload, op);
            let mut row = vec![label, unit.to_owned()];
            let mut ratios = vec![format!("  ÷ {against} (target ≥ {target}×)"), String::new()];
            for imp in imps {
                let r = self
                    .own_clients
                    .iter()
                    .find(|r| &r.implementation == imp && r.workload == workload && r.op == op);
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

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(s, "# ferry bench\n");
        let _ = writeln!(
            s,
            "{} on {} cores ({}), Linux {}; served folders and client destinations in `{}` ({}).\n",
            self.tool, m.cores, m.cpu, m.kernel, m.work_dir, m.work_fs
        );
        let st = &self.settings;
        // The workloads this run measured, with either kind of client.
        let ran = |w: &str| {
            self.results.iter().any(|r| r.workload == w)
                || self.own_clients.iter().any(|r| r.workload == w)
        };
        let mut about = String::new();
        if ran("large") {
            let _ = write!(about, "Workload 1: one {} file. ", size_text(st.large_size));
        }
        if ran("small") {
            let _ = write!(
                about,
                "Workload 2: {} files of {}. ",
                st.small_ops,
                size_text(st.small_size)
            );
        }
        if ran("mixed") {
            let _ = write!(
                about,
                "Workload 3: {} mixed operations (70 % get, 20 % put, 10 % dir; files of \
                 4 KiB–1 MiB). ",
                st.mixed_ops
            );
        }
        if ran("idle") {
            let _ = write!(
                about,
                "Workload 4: {} sessions held {}, each getting a {} file every {} on average. ",
                st.idle_connections,
                seconds_text(st.idle_seconds),
                size_text(st.small_size),
                seconds_text(st.idle_mean_gap_seconds),
            );
        }
        let _ = writeln!(
            s,
            "{about}{} Sizes and rates in binary units: 1 MiB = 2^20 octets.\n",
            match st.repeat {
                1 => "One run per case.".to_owned(),
                n if ran("idle") => format!("Median of {n} runs (workload 4: one run)."),
                n => format!("Median of {n} runs."),
            }
        );
        if !self.baselines.is_empty() {
            let _ = writeln!(s, "## Baselines\n");
            let _ = writeln!(
                s,
                "| baseline | MiB/s (median) | MiB/s (best) | seconds (median) | what |\n|---|--:|--:|--:|---|"
            );
            for b in &self.baselines {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {:.0} | {:.3} | {} |",
                    b.name, b.mib_per_s, b.best_mib_per_s, b.seconds, b.description
                );
            }
            s.push('\n');
        }
        if !self.results.is_empty() {
            let _ = writeln!(s, "## Results\n");
            let _ = writeln!(
                s,
                "| implementation | workload | sessions | ops | MiB/s | best MiB/s | ops/s | best ops/s | p50 ms | p99 ms | max ms | server CPU s | client CPU s | server peak RSS MiB | errors |"
            );
            let _ = writeln!(
                s,
                "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
            );
            let mut rows: Vec<&CaseResult> = self.results.iter().collect();
            rows.sort_by_key(|r| {
                (
                    workload_rank(&r.workload),
                    r.op.clone(),
                    r.pipeline,
                    r.connections,
                )
            });
            for r in rows {
                let (p50, p99, max) =
                    r.latency.map_or(("–".into(), "–".into(), "–".into()), |l| {
                        (ms(l.p50_us), ms(l.p99_us), ms(l.max_us))
                    });
                let _ = writeln!(
                    s,
                    "| {} | {} {}{} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {} |",
                    r.implementation,
                    r.workload,
                    r.op,
                    r.depth_text(),
                    r.connections,
                    r.ops,
                    r.mib_per_s,
                    r.best_mib_per_s,
                    r.ops_per_s,
                    r.best_ops_per_s,
                    p50,
                    p99,
                    max,
                    r.server_cpu_s,
                    r.client_cpu_s,
                    r.server_peak_rss_mib,
                    r.errors
                );
            }
            s.push('\n');
        }
        let idle: Vec<&CaseResult> = self.results.iter().filter(|r| r.idle.is_some()).collect();
        if !idle.is_empty() {
            let _ = writeln!(s, "## Workload 4: server memory with every session open\n");
            let _ = writeln!(
                s,
                "| implementation | sessions | RSS before MiB | RSS open MiB | per session KiB | peak while opening MiB | peak MiB | ramp-up s |\n|---|--:|--:|--:|--:|--:|--:|--:|"
            );
            for r in idle {
                if let Some(i) = r.idle {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                        r.implementation,
                        i.connections,
                        i.rss_before_mib,
                        i.rss_open_mib,
                        i.per_connection_kib,
                        i.peak_open_mib,
                        r.server_peak_rss_mib,
                        i.connect_seconds
                    );
                }
            }
            s.push('\n');
        }
        if !self.own_clients.is_empty() {
            self.own_markdown(&mut s);
        }
        if !self.peers.is_empty() {
            let _ = writeln!(s, "## Peers (bench/peers.sh, whole commands)\n");
            let _ = writeln!(
                s,
                "| tool | workload | sessions | seconds | MiB/s | files/s | ok |\n|---|---|--:|--:|--:|--:|---|"
            );
            for p in &self.peers {
                let tool = match &p.implementation {
                    Some(i) => format!("{} ({i})", p.tool),
                    None => p.tool.clone(),
                };
                let _ = writeln!(
                    s,
                    "| {tool} | {} {} | {} | {} | {} | {} | {} |",
                    p.workload,
                    p.direction,
                    p.connections,
                    opt(p.median_s, 3),
                    opt(p.mib_per_s(), 0),
                    opt(p.files_per_s, 0),
                    match p.ok {
                        Some(true) => "yes".to_owned(),
                        Some(false) => format!("NO {}", p.note.clone().unwrap_or_default()),
                        None => p.note.clone().unwrap_or_default(),
                    }
                );
            }
            s.push('\n');
        }
        if !self.targets.is_empty() {
            let _ = writeln!(s, "## Targets\n");
            let _ = writeln!(
                s,
                "| goal | implementation | measured | met |\n|---|---|---|---|"
            );
            for t in &self.targets {
                let met = match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "not checked",
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {met} |",
                    t.goal, t.implementation, t.measured
                );
            }
            s.push('\n');
        }
        if self.failed() {
            let _ = writeln!(s, "## Errors\n");
            for r in self.results.iter().filter(|r| r.errors > 0) {
                let _ = writeln!(
                    s,
                    "- {} {}: {} errors, first: {}",
                    r.implementation,
                    r.label(),
                    r.errors,
                    r.first_error.as_deref().unwrap_or("?")
                );
            }
            for r in self.own_clients.iter().filter(|r| r.errors > 0) {
                let _ = writeln!(
                    s,
                    "- {} own client {}: {} of {} runs failed, first: {}",
                    r.implementation,
                    r.label(),
                    r.errors,
                    r.errors as usize + r.runs_seconds.len(),
                    r.first_error.as_deref().unwrap_or("?")
                );
            }
        }
        s
    }

    /// The Markdown section of the own-client cases.
    fn own_markdown(&self, s: &mut String) {
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
        for (workload, op) in self.own_cases() {
            for r in self
                .own_clients
                .iter()
                .filter(|r| r.workload == workload && r.op == op)
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

fn ratio_check(
    checks: &mut Vec<TargetCheck>,
    imp: &str,
    goal: &str,
    r: Option<&CaseResult>,
    base: Option<&Baseline>,
) {
    let Some(r) = r else { return };
    checks.push(match base {
        Some(b) if b.best_mib_per_s > 0.0 && b.mib_per_s > 0.0 => {
            // Interference on a shared machine only ever slows a run down: the fastest runs
            // are compared (the medians are shown too).
            let best = r.best_mib_per_s / b.best_mib_per_s;
            let median = r.mib_per_s / b.mib_per_s;
            TargetCheck {
                goal: goal.to_owned(),
                implementation: imp.to_owned(),
                measured: format!(
                    "best {:.0} MiB/s = {:.0} % of {} {:.0} MiB/s (medians: {:.0} = {:.0} % of {:.0})",
                    r.best_mib_per_s,
                    best * 100.0,
                    b.name,
                    b.best_mib_per_s,
                    r.mib_per_s,
                    median * 100.0,
                    b.mib_per_s
                ),
                met: Some(best >= 0.8),
            }
        }
        _ => TargetCheck {
            goal: goal.to_owned(),
            implementation: imp.to_owned(),
            measured: format!("{:.0} MiB/s; no baseline in this run", r.mib_per_s),
            met: None,
        },
    });
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

/// A rate as the tables show it: whole numbers from 10 up, one decimal below.
fn figure(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `rows` as aligned text columns, two spaces apart: the first `left` columns (and with
/// `last_left` the last one) left-aligned, the others (figures) right-aligned.
fn aligned(rows: &[Vec<String>], left: usize, last_left: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            if i < left || (last_left && i + 1 == columns) {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

/// Seconds as a duration text: `20s`, `500ms`.
fn seconds_text(s: f64) -> String {
    crate::units::duration_text(std::time::Duration::try_from_secs_f64(s).unwrap_or_default())
}

fn workload_rank(w: &str) -> usize {
    ["large", "small", "mixed", "idle"]
        .iter()
        .position(|x| *x == w)
        .unwrap_or(9)
}

fn ms(us: f64) -> String {
    if us < 10_000.0 {
        format!("{:.2}", us / 1000.0)
    } else {
        format!("{:.0}", us / 1000.0)
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            },
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
