//! The plot: one SVG of grouped bar charts, one panel per question a reader asks (how close
//! to the ceiling, how many files per second, how slow is the tail, how much memory per
//! session, how much CPU per operation). Written by hand: plain SVG needs no fonts or
//! native libraries, and the output is stable text that tests can check.

use std::fmt::Write as _;

use crate::report::Report;

/// One grouped bar chart.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// Title above the chart.
    pub title: String,
    /// Unit of the y axis.
    pub unit: String,
    /// Groups along the x axis.
    pub categories: Vec<String>,
    /// One bar per category per series: (series name, value per category).
    pub series: Vec<(String, Vec<Option<f64>>)>,
    /// Horizontal reference lines: (label, value).
    pub lines: Vec<(String, f64)>,
}

const PANEL_W: f64 = 430.0;
const PANEL_H: f64 = 330.0;
const COLUMNS: usize = 3;
const LEGEND_H: f64 = 56.0;

const PALETTE: [(&str, &str); 8] = [
    ("threads", "#4C72B0"),
    ("async-std", "#DD8452"),
    ("tokio", "#55A868"),
    ("smol", "#C44E52"),
    ("nginx", "#8172B3"),
    ("vsftpd", "#937860"),
    ("rsync", "#DA8BC3"),
    ("sftp", "#8C8C8C"),
];
const OTHER_COLORS: [&str; 4] = ["#CCB974", "#64B5CD", "#2F4F4F", "#A0522D"];

fn color_of(name: &str, index: usize) -> &'static str {
    PALETTE
        .iter()
        .find(|(k, _)| name == *k || name.starts_with(&format!("{k} ")) || name.starts_with(k))
        .map_or(OTHER_COLORS[index % OTHER_COLORS.len()], |(_, c)| c)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// 1234 → `1.2k`, 0.5 → `0.50`.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A round axis maximum at or above `v`.
fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn render_panel(out: &mut String, p: &Panel, x0: f64, y0: f64) {
    let (left, right, top, bottom) = (58.0, 12.0, 34.0, 40.0);
    let (pw, ph) = (PANEL_W - left - right, PANEL_H - top - bottom);
    let (px, py) = (x0 + left, y0 + top);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
        x0 + 8.0,
        y0 + 18.0,
        esc(&p.title)
    );
    let max_val = p
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .chain(p.lines.iter().map(|l| l.1))
        .fold(0.0, f64::max);
    let ymax = nice_max(max_val * 1.08);
    let y_of = |v: f64| py + ph - (v / ymax).clamp(0.0, 1.0) * ph;
    // Axis, grid and ticks.
    for i in 0..=5 {
        let v = ymax * i as f64 / 5.0;
        let y = y_of(v);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            px + pw,
            px - 4.0,
            y + 3.5,
            short(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="10" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">{}</text>"#,
        x0 + 12.0,
        py + ph / 2.0,
        x0 + 12.0,
        py + ph / 2.0,
        esc(&p.unit)
    );
    let ncat = p.categories.len().max(1);
    let nser = p.series.len().max(1);
    let group_w = pw / ncat as f64;
    let bar_w = group_w * 0.84 / nser as f64;
    for (ci, cat) in p.categories.iter().enumerate() {
        let gx = px + group_w * ci as f64 + group_w * 0.08;
        for (si, (name, values)) in p.series.iter().enumerate() {
            let bx = gx + bar_w * si as f64;
            match values.get(ci).copied().flatten() {
                Some(v) => {
                    let y = y_of(v);
                    let _ = writeln!(
                        out,
                        r#"<rect class="bar" x="{bx:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {}</title></rect>"#,
                        (bar_w - 1.0).max(1.0),
                        (py + ph - y).max(0.0),
                        color_of(name, si),
                        esc(name),
                        short(v),
                        esc(&p.unit)
                    );
                    if bar_w >= 14.0 {
                        let _ = writeln!(
                            out,
                            r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                            bx + bar_w / 2.0,
                            y - 3.0,
                            short(v)
                        );
                    }
                }
                None => {
                    let _ = writeln!(
                        out,
                        r##"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="#999">–</text>"##,
                        bx + bar_w / 2.0,
                        py + ph - 3.0
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            px + group_w * (ci as f64 + 0.5),
            py + ph + 16.0,
            esc(cat)
        );
    }
    for (k, (label, v)) in p.lines.iter().enumerate() {
        let y = y_of(*v);
        // Labels alternate right and left, so that close lines keep readable labels.
        let (tx, anchor) = if k % 2 == 0 {
            (px + pw - 2.0, "end")
        } else {
            (px + 2.0, "start")
        };
        let _ = writeln!(
            out,
            r##"<line class="ref" x1="{px:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#222" stroke-dasharray="5,3"/><text x="{tx:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#222">{} {}</text>"##,
            px + pw,
            y - 3.0,
            esc(label),
            short(*v)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{px:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#444"/>"##,
        py + ph,
        px + pw,
        py + ph
    );
}

/// The panels as one SVG document, with a legend of every series.
pub fn render(title: &str, subtitle: &str, panels: &[Panel]) -> String {
    let rows = panels.len().div_ceil(COLUMNS).max(1);
    let (w, h) = (PANEL_W * COLUMNS as f64, LEGEND_H + PANEL_H * rows as f64);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r##"<text x="8" y="20" font-size="15" font-weight="bold">{}</text><text x="8" y="38" font-size="11" fill="#444">{}</text>"##,
        esc(title),
        esc(subtitle)
    );
    let mut names: Vec<String> = Vec::new();
    for p in panels {
        for (n, _) in &p.series {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let mut lx = 8.0;
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="44" width="10" height="10" fill="{}"/><text x="{:.1}" y="53" font-size="11">{}</text>"#,
            color_of(n, i),
            lx + 13.0,
            esc(n)
        );
        lx += 22.0 + 6.5 * n.chars().count() as f64;
    }
    for (i, p) in panels.iter().enumerate() {
        let x = PANEL_W * (i % COLUMNS) as f64;
        let y = LEGEND_H + PANEL_H * (i / COLUMNS) as f64;
        render_panel(&mut out, p, x, y);
    }
    out.push_str("</svg>\n");
    out
}

/// The report's panels.
pub fn panels(r: &Report) -> Vec<Panel> {
    let imps = &r.settings.implementations;
    let value = |imp: &str,
                 w: &str,
                 op: &str,
                 c: Option<usize>,
                 f: &dyn Fn(&crate::report::CaseResult) -> Option<f64>| {
        r.find(imp, w, op, c).and_then(f)
    };
    let mut out = Vec::new();

    // Workload 1, with peers (one session) and the ceilings.
    let cats = ["get", "put"];
    let mut series: Vec<(String, Vec<Option<f64>>)> = imps
        .iter()
        .map(|i| {
            let v = cats
                .iter()
                .map(|op| value(i, "large", op, None, &|c| Some(c.mib_per_s)))
                .collect();
            (i.clone(), v)
        })
        .collect();
    series.extend(peer_series(r, "large", &[("get", 1), ("put", 1)], |p| {
        p.mib_per_s()
    }));
    let mut lines = Vec::new();
    for (name, label) in [("tcp-copy", "TCP copy"), ("disk-write", "disk write+fsync")] {
        if let Some(b) = r.baseline(name) {
            lines.push((label.to_owned(), b.mib_per_s));
        }
    }
    if series.iter().any(|(_, v)| v.iter().any(Option::is_some)) {
        out.push(Panel {
            title: format!(
                "1 · one {} file, one session",
                crate::units::size_text(r.settings.large_size)
            ),
            unit: "MiB/s".into(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            series,
            lines,
        });
    }

    // Workload 2: one panel per pipeline depth; the other tools next to ferry's deepest.
    let mut depths: Vec<usize> = r
        .results
        .iter()
        .filter(|c| c.workload == "small")
        .map(|c| c.pipeline)
        .collect();
    depths.sort_unstable();
    depths.dedup();
    let deepest = depths.last().copied();
    for depth in depths {
        let mut cats2: Vec<(String, &str, usize)> = Vec::new();
        for op in ["get", "put"] {
            let mut conns: Vec<usize> = r
                .results
                .iter()
                .filter(|c| c.workload == "small" && c.op == op && c.pipeline == depth)
                .map(|c| c.connections)
                .collect();
            conns.sort_unstable();
            conns.dedup();
            for c in conns {
                cats2.push((format!("{op} ×{c}"), op, c));
            }
        }
        let mut series: Vec<(String, Vec<Option<f64>>)> = imps
            .iter()
            .map(|i| {
                let v = cats2
                    .iter()
                    .map(|(_, op, c)| {
                        r.find_deep(i, "small", op, Some(*c), depth)
                            .map(|x| x.ops_per_s)
                    })
                    .collect();
                (i.clone(), v)
            })
            .collect();
        if Some(depth) == deepest {
            let cats: Vec<(&str, usize)> = cats2.iter().map(|(_, op, c)| (*op, *c)).collect();
            series.extend(peer_series(r, "small", &cats, |p| p.files_per_s));
        }
        let how = if depth > 1 {
            format!("{depth} requests in flight per session")
        } else {
            "one request at a time".to_owned()
        };
        out.push(Panel {
            title: format!(
                "2 · {} files of {}, {how}",
                r.settings.small_ops,
                crate::units::size_text(r.settings.small_size)
            ),
            unit: "files/s".into(),
            categories: cats2.iter().map(|c| c.0.clone()).collect(),
            series,
            lines: Vec::new(),
        });
    }

    // Workload 3.
    if r.results.iter().any(|c| c.workload == "mixed") {
        let series = imps
            .iter()
            .map(|i| {
                (
                    i.clone(),
                    vec![value(i, "mixed", "mixed", None, &|c| Some(c.ops_per_s))],
                )
            })
            .collect();
        let conns = r
            .results
            .iter()
            .find(|c| c.workload == "mixed")
            .map_or(0, |c| c.connections);
        out.push(Panel {
            title: format!("3 · mixed dir/get/put, {conns} sessions"),
            unit: "ops/s".into(),
            categories: vec![format!("{} ops", r.settings.mixed_ops)],
            series,
            lines: Vec::new(),
        });
    }

    // Tail latency and CPU per operation across the concurrent workloads.
    let mut tail_cats: Vec<(String, &str, &str, Option<usize>)> = Vec::new();
    for (w, op, c, label) in [
        ("small", "get", Some(64), "get ×64"),
        ("small", "put", Some(64), "put ×64"),
        ("mixed", "mixed", None, "mixed"),
        ("idle", "idle-get", None, "idle get"),
    ] {
        if r.results
            .iter()
            .any(|x| x.workload == w && x.op == op && c.is_none_or(|c| x.connections == c))
        {
            tail_cats.push((label.to_owned(), w, op, c));
        }
    }
    if !tail_cats.is_empty() {
        let series = imps
            .iter()
            .map(|i| {
                let v = tail_cats
                    .iter()
                    .map(|(_, w, op, c)| {
                        value(i, w, op, *c, &|x| x.latency.map(|l| l.p99_us / 1000.0))
                    })
                    .collect();
                (i.clone(), v)
            })
            .collect();
        out.push(Panel {
            title: "p99 latency of one operation".into(),
            unit: "ms".into(),
            categories: tail_cats.iter().map(|c| c.0.clone()).collect(),
            series,
            lines: Vec::new(),
        });
        let cpu_cats: Vec<_> = tail_cats.iter().filter(|c| c.1 != "idle").collect();
        let series = imps
            .iter()
            .map(|i| {
                let v = cpu_cats
                    .iter()
                    .map(|(_, w, op, c)| {
                        value(i, w, op, *c, &|x| {
                            (x.ops > 0).then(|| x.server_cpu_s * 1e6 / x.ops as f64)
                        })
                    })
                    .collect();
                (i.clone(), v)
            })
            .collect();
        out.push(Panel {
            title: "server CPU per operation".into(),
            unit: "µs".into(),
            categories: cpu_cats.iter().map(|c| c.0.clone()).collect(),
            series,
            lines: Vec::new(),
        });
    }

    // Workload 4 memory.
    if r.results.iter().any(|c| c.idle.is_some()) {
        let n = r
            .results
            .iter()
            .find_map(|c| c.idle.map(|i| i.connections))
            .unwrap_or(0);
        let series = imps
            .iter()
            .map(|i| {
                let per = value(i, "idle", "idle-get", None, &|c| {
                    c.idle.map(|m| m.per_connection_kib)
                });
                let peak = value(i, "idle", "idle-get", None, &|c| {
                    Some(c.server_peak_rss_mib)
                });
                (i.clone(), vec![per, peak])
            })
            .collect();
        out.push(Panel {
            title: format!("4 · {n} mostly idle sessions: server memory"),
            unit: "KiB per session | MiB peak".into(),
            categories: vec!["KiB per session".into(), "peak RSS MiB".into()],
            series,
            lines: Vec::new(),
        });
    }

    // TLS against plain (`--tls`): the ratio of the fastest runs, per case.
    let pairs: Vec<_> = r
        .tls_pairs()
        .into_iter()
        .filter(|p| p.plain.workload != "idle")
        .collect();
    if !pairs.is_empty() {
        let mut cases: Vec<&crate::report::CaseResult> = Vec::new();
        for p in &pairs {
            if !cases.iter().any(|c| c.same_case(p.plain)) {
                cases.push(p.plain);
            }
        }
        let series = imps
            .iter()
            .map(|i| {
                let v = cases
                    .iter()
                    .map(|c| {
                        pairs
                            .iter()
                            .find(|p| &p.plain.implementation == i && p.plain.same_case(c))
                            .and_then(|p| p.figures().ratios().map(|r| r.0))
                    })
                    .collect();
                (i.clone(), v)
            })
            .collect();
        out.push(Panel {
            title: "TLS ÷ plain, same implementation (fastest runs)".into(),
            unit: "×".into(),
            categories: cases.iter().map(|c| c.short_label()).collect(),
            series,
            lines: vec![
                (
                    format!("large target {}×", crate::report::TLS_LARGE_TARGET),
                    crate::report::TLS_LARGE_TARGET,
                ),
                (
                    format!("small target {}×", crate::report::TLS_SMALL_TARGET),
                    crate::report::TLS_SMALL_TARGET,
                ),
            ],
        });
    }
    out
}

/// One series per other tool (not ferry's own CLI rows) for `workload`, with a value per
/// category `(direction, connections)`; failed rows count as missing.
fn peer_series(
    r: &Report,
    workload: &str,
    cats: &[(&str, usize)],
    f: impl Fn(&crate::report::PeerResult) -> Option<f64>,
) -> Vec<(String, Vec<Option<f64>>)> {
    let mut tools: Vec<String> = r
        .peers
        .iter()
        .filter(|p| p.workload == workload && !p.tool.starts_with("ferry"))
        .map(|p| p.tool.clone())
        .collect();
    tools.sort();
    tools.dedup();
    tools
        .into_iter()
        .map(|tool| {
            let v = cats
                .iter()
                .map(|&(op, connections)| {
                    r.peers
                        .iter()
                        .find(|p| {
                            p.tool == tool
                                && p.workload == workload
                                && p.direction == op
                                && p.connections == connections
                                && p.ok != Some(false)
                        })
                        .and_then(&f)
                })
                .collect();
            (tool, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.3), 8.0);
        assert_eq!(nice_max(2700.0), 3000.0);
        assert_eq!(nice_max(101.0), 120.0);
        assert_eq!(short(2712.0), "2.7k");
        assert_eq!(short(12_345.0), "12k");
        assert_eq!(short(0.25), "0.25");
    }

    #[test]
    fn a_panel_draws_one_bar_per_value_and_every_reference_line() {
        let p = Panel {
            title: "t <&>".into(),
            unit: "MiB/s".into(),
            categories: vec!["get".into(), "put".into()],
            series: vec![
                ("threads".into(), vec![Some(2000.0), Some(900.0)]),
                ("tokio".into(), vec![Some(1800.0), None]),
            ],
            lines: vec![("TCP copy".into(), 2500.0)],
        };
        let svg = render("title", "sub", &[p]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="bar""#).count(), 3);
        assert_eq!(svg.matches(r#"class="ref""#).count(), 1);
        assert!(svg.contains("t &lt;&amp;&gt;"), "text is escaped");
        assert!(!svg.contains("t <&>"));
        // The tallest thing (the reference line) fits under the axis maximum (3000).
        assert!(svg.contains(">3.0k<"), "{svg}");
    }
}
