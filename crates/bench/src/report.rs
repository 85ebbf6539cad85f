//! The report: one JSON document (the record), rendered as Markdown tables and an SVG plot.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::Latency;
use crate::units::{MIB, size_text};
use crate::workloads::IdleMemory;

mod own;
mod tls;
pub use own::{Comparison, OwnResult};
pub use tls::{TLS_LARGE_TARGET, TLS_SMALL_TARGET};

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
    /// What this run could not measure, and why (e.g. own clients over TLS without the
    /// client's TLS flags).
    pub notes: Vec<String>,
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
    /// Whether workloads 1, 2 and 4 also ran over TLS (`--tls`).
    pub tls: bool,
    /// Sessions of workload 5 per kind of login.
    pub login_sessions: usize,
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
    /// Over TLS (`ferry serve --tls-self-signed`, the key pinned by the clients), else plain.
    pub tls: bool,
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
    /// `small get ×64 (32 deep)`-style label (` TLS` at the end over TLS).
    pub fn label(&self) -> String {
        format!(
            "{} {} ×{}{}{}",
            self.workload,
            self.op,
            self.connections,
            self.depth_text(),
            self.tls_text()
        )
    }

    /// `large get ×1`, `small put ×8 (32 deep)`, `mixed ×16`, `idle ×1000` (` TLS` at the
    /// end over TLS).
    pub fn short_label(&self) -> String {
        match self.workload.as_str() {
            "mixed" | "idle" => {
                format!("{} ×{}{}", self.workload, self.connections, self.tls_text())
            }
            _ => self.label(),
        }
    }

    /// ` TLS` over TLS, else nothing.
    pub fn tls_text(&self) -> &'static str {
        if self.tls { " TLS" } else { "" }
    }

    /// Whether `other` is the same case (workload, op, sessions, depth), plain or over TLS.
    pub fn same_case(&self, other: &CaseResult) -> bool {
        (
            self.workload.as_str(),
            self.op.as_str(),
            self.connections,
            self.pipeline,
        ) == (
            other.workload.as_str(),
            other.op.as_str(),
            other.connections,
            other.pipeline,
        )
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

/// One figure of another tool, from `bench/peers.sh`'s `peers.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerResult {
    /// The tool (`vsftpd`, `vsftpd-tls`, `nginx`, `nginx-tls`, `rsync`, `sftp`, `ferry`,
    /// `ferry-tls`; ferry's own rows are left out of the comparisons with peers).
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

    /// [`Report::find`] with pipeline depth `depth` (plain: the TLS results are compared with
    /// these, not with the targets of the plain ones).
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
                && !r.tls
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
                            && !r.tls
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
                        !p.tool.starts_with("ferry")
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
        checks.extend(self.tls_checks());
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
            if !cases.iter().any(|c| c.same_case(r) && c.tls == r.tls) {
                cases.push(r);
            }
        }
        cases.sort_by_key(|r| {
            (
                workload_rank(&r.workload),
                r.op.clone(),
                r.pipeline,
                r.connections,
                r.tls,
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
                "login" => "ms/session",
                _ => "ops/s",
            };
            let mut row = vec![c.short_label(), unit.to_owned()];
            for imp in imps {
                let r = self
                    .results
                    .iter()
                    .find(|r| &r.implementation == imp && r.same_case(c) && r.tls == c.tls);
                row.push(match r {
                    None => "–".to_owned(),
                    Some(r) => {
                        let v = match c.workload.as_str() {
                            "large" => r.mib_per_s,
                            "idle" => r.server_peak_rss_mib,
                            "login" => r.latency.map_or(0.0, |l| l.p50_us / 1000.0),
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
        if !self.tls_pairs().is_empty() {
            s.push('\n');
            s.push_str(&self.tls_table());
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
        for note in &self.notes {
            let _ = writeln!(s, "Not measured: {note}.");
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

    /// Workload 5's table: what a session costs without a login, with a key and with a
    /// password, and what the login adds.
    fn login_markdown(&self, s: &mut String) {
        let _ = writeln!(s, "## Workload 5: the cost of a login\n");
        let _ = writeln!(
            s,
            "Per session (TLS handshake, greeting, login, `close`), median run. The client's CPU \
             includes the password's PBKDF2 (the verifier's iteration count); the server's, the \
             proof's check.\n"
        );
        let _ = writeln!(
            s,
            "| implementation | login | sessions | p50 ms | p99 ms | login adds (p50) ms | server CPU ms | client CPU ms | errors |\n|---|---|--:|--:|--:|--:|--:|--:|--:|"
        );
        for imp in &self.settings.implementations {
            let find = |op: &str| {
                self.results
                    .iter()
                    .find(|r| &r.implementation == imp && r.workload == "login" && r.op == op)
            };
            let base = find("none").and_then(|r| r.latency).map(|l| l.p50_us);
            for op in ["none", "key", "password"] {
                let Some(r) = find(op) else { continue };
                let per = |cpu: f64| 1000.0 * cpu / (r.ops.max(1) as f64);
                let (p50, p99) = r.latency.map_or(("–".into(), "–".into()), |l| {
                    (ms(l.p50_us), ms(l.p99_us))
                });
                let adds = match (op, base, r.latency) {
                    ("none", _, _) => "–".to_owned(),
                    (_, Some(b), Some(l)) => ms(l.p50_us - b),
                    _ => "–".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "| {imp} | {op} | {} | {p50} | {p99} | {adds} | {:.2} | {:.2} | {} |",
                    r.ops,
                    per(r.server_cpu_s),
                    per(r.client_cpu_s),
                    r.errors
                );
            }
        }
        s.push('\n');
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
        if ran("login") {
            let _ = write!(
                about,
                "Workload 5: {} sessions over TLS without a login and with a key, a tenth \
                 as many with a password, one after another, each connected, logged in (or \
                 not) and closed. ",
                st.login_sessions
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
                    r.tls,
                )
            });
            for r in rows {
                let (p50, p99, max) =
                    r.latency.map_or(("–".into(), "–".into(), "–".into()), |l| {
                        (ms(l.p50_us), ms(l.p99_us), ms(l.max_us))
                    });
                let _ = writeln!(
                    s,
                    "| {} | {} {}{}{} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {} |",
                    r.implementation,
                    r.workload,
                    r.op,
                    r.depth_text(),
                    r.tls_text(),
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
                        "| {}{} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                        r.implementation,
                        r.tls_text(),
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
        if ran("login") {
            self.login_markdown(&mut s);
        }
        if !self.tls_pairs().is_empty() {
            self.tls_markdown(&mut s);
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
        if !self.notes.is_empty() {
            let _ = writeln!(s, "## Not measured\n");
            for note in &self.notes {
                let _ = writeln!(s, "- {note}.");
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
    ["large", "small", "mixed", "idle", "login"]
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
