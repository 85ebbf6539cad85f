//! `ferry bench` end to end, at a tiny size: every implementation and workload runs as a
//! child `ferry serve` process, and the report says what happened. This checks that the tool
//! works and that its report is complete and consistent, not how fast anything is (figures
//! live in docs/PERFORMANCE.md, from release builds on a quiet machine).

use std::process::Command;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

#[test]
fn bench_runs_every_implementation_and_workload_and_reports_them() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("out");
    // Figures of another tool, as bench/peers.sh writes them.
    let peers = work.path().join("peers.json");
    std::fs::write(
        &peers,
        r#"[{"tool": "nginx", "impl": null, "client": "curl", "workload": "small",
             "direction": "get", "connections": 4, "files": 40, "bytes": 163840,
             "median_s": 0.5, "min_s": 0.5, "max_s": 0.6, "mb_per_s": 0.3,
             "files_per_s": 80.0, "ok": true, "note": ""}]"#,
    )
    .expect("write peers.json");
    let output = Command::new(FERRY)
        .arg("bench")
        .arg("--dir")
        .arg(work.path())
        .arg("--out")
        .arg(&out)
        .args([
            "--large-size",
            "3MiB",
            "--small-ops",
            "40",
            "--small-conns",
            "1,4",
        ])
        .args(["--mixed-ops", "40", "--mixed-conns", "3"])
        .args([
            "--idle-conns",
            "20",
            "--idle-secs",
            "0.5",
            "--idle-gap",
            "0.1",
        ])
        .args(["--login-sessions", "10"])
        .args(["--repeat", "2"])
        // Both kinds of client in one run (the own clients in detail: the next test).
        .args(["--clients", "shared,own"])
        .arg("--peers")
        .arg(&peers)
        .output()
        .expect("run ferry bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ferry bench failed: {stderr}");

    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let results = report["results"].as_array().expect("results");
    // 4 implementations × (large get, large put, small {get, put} × {×1, ×4} × {1, 32 deep},
    // mixed, idle, login {none, key, password}).
    assert_eq!(results.len(), 4 * 15, "{json}");
    let own = report["own_clients"].as_array().expect("own_clients");
    assert_eq!(own.len(), 4 * 4, "{json}");
    for r in own {
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["runs_seconds"].as_array().map(Vec::len), Some(2), "{r}");
    }
    for r in results {
        let label = format!(
            "{} {} {} ×{}",
            r["implementation"], r["workload"], r["op"], r["connections"]
        );
        assert_eq!(r["errors"], 0, "{label}: {}", r["first_error"]);
        let ops = r["ops"].as_u64().expect("ops");
        match r["workload"].as_str() {
            Some("large") => {
                assert_eq!(ops, 1, "{label}");
                assert_eq!(r["bytes"], 3 << 20, "{label}");
            }
            Some("small") => {
                assert_eq!(ops, 40, "{label}");
                assert_eq!(r["bytes"], 40 * 4096, "{label}");
            }
            Some("mixed") => assert_eq!(ops, 40, "{label}"),
            Some("login") => {
                // Every session logged in (errors are checked above), over TLS.
                let want = if r["op"] == "password" { 5 } else { 10 };
                assert_eq!(ops, want, "{label}");
                assert_eq!(r["tls"], true, "{label}");
            }
            Some("idle") => {
                let idle = &r["idle"];
                assert_eq!(idle["connections"], 20, "{label}");
                assert!(
                    idle["rss_open_mib"].as_f64() >= idle["rss_before_mib"].as_f64(),
                    "{label}"
                );
            }
            other => panic!("unexpected workload {other:?}"),
        }
        if r["workload"] != "idle" {
            assert_eq!(
                r["runs_seconds"].as_array().map(Vec::len),
                Some(2),
                "{label}"
            );
            let lat = &r["latency"];
            assert_eq!(lat["samples"].as_u64(), Some(ops), "{label}");
            assert!(lat["p50_us"].as_f64() <= lat["p99_us"].as_f64(), "{label}");
            assert!(lat["p99_us"].as_f64() <= lat["max_us"].as_f64(), "{label}");
        }
        assert!(r["seconds"].as_f64().is_some_and(|s| s > 0.0), "{label}");
        assert!(
            r["server_peak_rss_mib"].as_f64().is_some_and(|m| m > 0.5),
            "{label}"
        );
    }
    let baselines: Vec<&str> = report["baselines"]
        .as_array()
        .expect("baselines")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(baselines, ["tcp-copy", "tcp-memory", "disk-write"]);
    for b in report["baselines"].as_array().expect("baselines") {
        // Two runs before the implementations, two after.
        assert_eq!(b["runs_seconds"].as_array().map(Vec::len), Some(4), "{b}");
    }

    // stdout: the terminal summary, one row per case, one column per implementation, and
    // one unit system said once (binary: MiB, never MB).
    let table = String::from_utf8_lossy(&output.stdout);
    let head = table
        .lines()
        .find(|l| l.starts_with("case "))
        .unwrap_or_else(|| panic!("no table heading:\n{table}"));
    for imp in ["threads", "async-std", "tokio", "smol"] {
        assert!(head.contains(imp), "{head}");
    }
    let rows = table
        .lines()
        .skip_while(|l| !l.starts_with("case "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .count();
    assert_eq!(rows, 15, "{table}");
    assert_eq!(table.matches("1 MiB = 2^20 octets").count(), 1, "{table}");
    assert!(table.contains("\nown client "), "{table}");
    assert!(
        table.contains("large get ×1") && table.contains("idle ×20"),
        "{table}"
    );
    assert!(!table.contains("| ") && !table.contains(" MB"), "{table}");

    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(!md.contains("MB/s") && md.contains("MiB/s"), "{md}");
    for needle in [
        "## Baselines",
        "## Results",
        "## Workload 4",
        "## Workload 5: the cost of a login",
        "| tokio | password | 5 |",
        "## Targets",
        "| smol | small get | 4 |",
        "## Own clients",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    let svg = std::fs::read_to_string(out.join("report.svg")).expect("report.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("async-std"),
        "{svg}"
    );
    // Every implementation has a bar in each of the seven panels, and the peer one.
    assert!(svg.matches(r#"class="bar""#).count() > 4 * 7, "{svg}");
    assert!(svg.contains(">nginx<"), "the peer is in the legend");

    // The work folder is removed; nothing but the report is left.
    let mut left: Vec<_> = std::fs::read_dir(work.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["out", "peers.json"], "{left:?}");
}

/// `--clients own` at `--quick` size: every implementation's own `ferry get`/`ferry put` as
/// whole commands, each case present, without errors, compared with the TCP copy and with
/// rsync from a peers.json; no shared load generator, no mixed or idle workload.
#[test]
fn bench_own_clients_quick_runs_every_implementation_and_case() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("out");
    let peers = work.path().join("peers.json");
    let rsync = |direction: &str| {
        format!(
            r#"{{"tool": "rsync", "impl": null, "client": "rsync", "workload": "small",
                "direction": "{direction}", "connections": 1, "files": 1000,
                "bytes": 4096000, "median_s": 0.5, "min_s": 0.4, "max_s": 0.6,
                "mb_per_s": 8.2, "files_per_s": 2000.0, "ok": true, "note": ""}}"#
        )
    };
    std::fs::write(&peers, format!("[{}, {}]", rsync("get"), rsync("put")))
        .expect("write peers.json");
    let output = Command::new(FERRY)
        .args(["bench", "--quick", "--clients", "own"])
        .arg("--dir")
        .arg(work.path())
        .arg("--out")
        .arg(&out)
        .arg("--peers")
        .arg(&peers)
        .output()
        .expect("run ferry bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ferry bench failed: {stderr}");

    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(report["settings"]["clients"], serde_json::json!(["own"]));
    assert_eq!(
        report["results"].as_array().map(Vec::len),
        Some(0),
        "{json}"
    );
    let own = report["own_clients"].as_array().expect("own_clients");
    let mut cases: Vec<String> = Vec::new();
    for r in own {
        let imp = r["implementation"].as_str().expect("implementation");
        let (workload, op) = (r["workload"].as_str(), r["op"].as_str());
        let label = format!("{imp} {workload:?} {op:?}");
        assert_eq!(r["errors"], 0, "{label}: {}", r["first_error"]);
        // --quick: one run of each.
        assert_eq!(
            r["runs_seconds"].as_array().map(Vec::len),
            Some(1),
            "{label}"
        );
        assert!(r["seconds"].as_f64().is_some_and(|s| s > 0.0), "{label}");
        let command = r["command"].as_str().expect("command");
        assert!(
            command.starts_with(&format!("ferry {} --impl {imp} ADDR ", op.unwrap_or("?"))),
            "{label}: {command}"
        );
        let compared = &r["compared"];
        match workload {
            Some("large") => {
                assert_eq!(r["files"], 1, "{label}");
                assert_eq!(r["bytes"], 64 << 20, "{label}");
                assert_eq!(compared["reference"], "tcp-copy", "{label}");
                assert_eq!(compared["target"], 0.9, "{label}");
            }
            Some("small") => {
                assert_eq!(r["files"], 1000, "{label}");
                assert_eq!(r["bytes"], 1000 * 4096, "{label}");
                assert_eq!(compared["reference"], "rsync", "{label}");
                assert_eq!(compared["target"], 2.0, "{label}");
                // rsync's best run: 1000 files in 0.4 s.
                assert_eq!(compared["reference_best"], 2500.0, "{label}");
            }
            other => panic!("unexpected workload {other:?}"),
        }
        assert!(
            compared["ratio_best"].as_f64().is_some_and(|x| x > 0.0),
            "{label}"
        );
        cases.push(format!("{imp} {} {}", r["workload"], r["op"]));
    }
    let mut expected = Vec::new();
    for imp in ["threads", "async-std", "tokio", "smol"] {
        for case in [
            r#""large" "get""#,
            r#""large" "put""#,
            r#""small" "get""#,
            r#""small" "put""#,
        ] {
            expected.push(format!("{imp} {case}"));
        }
    }
    assert_eq!(cases, expected);
    let own_targets = report["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| {
            t["goal"]
                .as_str()
                .is_some_and(|g| g.starts_with("own client"))
        })
        .count();
    assert_eq!(own_targets, 16, "{json}");

    let table = String::from_utf8_lossy(&output.stdout);
    let head = table
        .lines()
        .find(|l| l.starts_with("own client "))
        .unwrap_or_else(|| panic!("no own-client table:\n{table}"));
    for imp in ["threads", "async-std", "tokio", "smol"] {
        assert!(head.contains(imp), "{head}");
    }
    for row in [
        "large get 64 MiB",
        "large put 64 MiB",
        "small get 1000 × 4 KiB",
        "small put 1000 × 4 KiB",
        "÷ tcp-copy (target ≥ 0.9×)",
        "÷ rsync (target ≥ 2×)",
        "rsync 2500 · 2000",
    ] {
        assert!(table.contains(row), "table lacks {row:?}:\n{table}");
    }
    assert!(!table.lines().any(|l| l.starts_with("case ")), "{table}");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        md.contains("## Own clients")
            && md.contains("`ferry put --impl smol ADDR s00000 … s00999`"),
        "{md}"
    );
    // The work folder is removed.
    let mut left: Vec<_> = std::fs::read_dir(work.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["out", "peers.json"], "{left:?}");
}

#[test]
fn bench_own_clients_need_workload_1_or_2() {
    let output = Command::new(FERRY)
        .args(["bench", "--clients", "own", "--workloads", "mixed,idle"])
        .output()
        .expect("run ferry bench");
    assert_eq!(output.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing to run"), "{stderr}");
}

#[test]
fn bench_refuses_bad_options_clearly() {
    let output = Command::new(FERRY)
        .args(["bench", "--large-size", "lots"])
        .output()
        .expect("run ferry bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a size"), "{stderr}");
}

/// `--tls` at a tiny size: every case of workloads 1, 2 and 4 runs plain and then over TLS on
/// the same implementation (`ferry serve --tls-self-signed`, the key pinned), without errors;
/// the `tls-memory` ceiling and the TLS section are in the report; own clients over TLS run,
/// or are named as not measured when this `ferry get` has no `--fingerprint`.
#[test]
fn bench_tls_runs_each_case_plain_and_over_tls() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("out");
    let output = Command::new(FERRY)
        .args(["bench", "--tls", "--impls", "threads,tokio"])
        .args(["--workloads", "large,small,idle", "--clients", "shared,own"])
        .arg("--dir")
        .arg(work.path())
        .arg("--out")
        .arg(&out)
        .args(["--large-size", "3MiB", "--small-ops", "40"])
        .args(["--small-conns", "1,4", "--small-pipeline", "1,8"])
        .args([
            "--idle-conns",
            "20",
            "--idle-secs",
            "0.5",
            "--idle-gap",
            "0.1",
        ])
        .args(["--repeat", "1"])
        .output()
        .expect("run ferry bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ferry bench --tls failed: {stderr}"
    );

    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(report["settings"]["tls"], true);
    let results = report["results"].as_array().expect("results");
    // 2 implementations × (large get, put; small {get, put} × {×1, ×4} × {1, 8 deep}; idle),
    // each plain and then over TLS.
    assert_eq!(results.len(), 2 * (2 + 8 + 1) * 2, "{json}");
    let case = |r: &serde_json::Value| {
        (
            r["implementation"].clone(),
            r["workload"].clone(),
            r["op"].clone(),
            r["connections"].clone(),
            r["pipeline"].clone(),
        )
    };
    for pair in results.chunks(2) {
        let (plain, tls) = (&pair[0], &pair[1]);
        assert_eq!(case(plain), case(tls), "a TLS run follows its plain twin");
        assert_eq!((&plain["tls"], &tls["tls"]), (&false.into(), &true.into()));
        for r in pair {
            assert_eq!(r["errors"], 0, "{:?}: {}", case(r), r["first_error"]);
            assert!(r["ops"].as_u64().is_some_and(|n| n > 0), "{:?}", case(r));
        }
        if tls["workload"] == "idle" {
            assert_eq!(tls["idle"]["connections"], 20, "{}", tls["idle"]);
        }
    }
    let baselines: Vec<&str> = report["baselines"]
        .as_array()
        .expect("baselines")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(baselines.contains(&"tls-memory"), "{baselines:?}");
    let goals: Vec<&str> = report["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["goal"].as_str())
        .filter(|g| g.starts_with("TLS: "))
        .collect();
    // Per implementation: large get, large put, small get, small put.
    assert_eq!(goals.len(), 8, "{goals:?}");

    let own = report["own_clients"].as_array().expect("own_clients");
    let has_flag = String::from_utf8_lossy(
        &Command::new(FERRY)
            .args(["get", "--help"])
            .output()
            .expect("ferry get --help")
            .stdout,
    )
    .contains("--fingerprint");
    let tls_own: Vec<&serde_json::Value> = own.iter().filter(|r| r["tls"] == true).collect();
    if has_flag {
        assert_eq!(tls_own.len(), 2 * 4, "{json}");
        for r in tls_own {
            assert_eq!(r["errors"], 0, "{}: {}", r["command"], r["first_error"]);
            let command = r["command"].as_str().expect("command");
            assert!(
                command.contains("--fingerprint FP ferrys://ADDR"),
                "{command}"
            );
        }
    } else {
        assert!(tls_own.is_empty(), "{json}");
        let notes = report["notes"].to_string();
        assert!(
            notes.contains("own clients over TLS not measured"),
            "{notes}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        md.contains("## TLS against plain (same implementation)"),
        "{md}"
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("TLS against plain"), "{table}");
}
