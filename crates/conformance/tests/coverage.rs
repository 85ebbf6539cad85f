//! Requirement coverage: every MUST requirement of spec/protocol.md is checked by at least
//! one case or listed, with a reason, in `uncovered.toml`; an ID listed there is not covered
//! by any case and exists in the spec. Also: what the runner embeds is the crate's copy of the
//! spec (`spec/`, kept identical to the workspace's `spec/` by `tests/spec_copy.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_conformance::spec::{Level, parse_requirements};
use ferry_conformance::{UNCOVERED_TOML, client_cases, server_cases};

/// The crate's copy of the specification (what the runner embeds).
fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("spec")
}

#[derive(serde::Deserialize)]
struct Uncovered {
    uncovered: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    id: String,
    reason: String,
}

#[test]
fn every_must_requirement_is_covered_or_listed_as_uncovered() {
    let md = std::fs::read_to_string(spec().join("protocol.md")).expect("spec/protocol.md");
    let reqs = parse_requirements(&md);
    assert_eq!(
        reqs.len(),
        md.matches("**[").count() - md.matches("**[PREFIX-N]**").count(),
        "every **[ID]** is parsed"
    );
    let levels: BTreeMap<&str, Level> = reqs.iter().map(|r| (r.id.as_str(), r.level)).collect();
    assert_eq!(levels.len(), reqs.len(), "requirement IDs are unique");

    let mut covered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in server_cases().into_iter().chain(client_cases()) {
        for r in &c.requirements {
            assert!(
                levels.contains_key(r.as_str()),
                "{} cites {r}, which spec/protocol.md does not define",
                c.id
            );
            covered.entry(r.clone()).or_default().push(c.id.clone());
        }
    }

    let file =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("uncovered.toml"))
            .expect("uncovered.toml");
    assert_eq!(
        file, UNCOVERED_TOML,
        "the runner embeds the current uncovered.toml"
    );
    let unc: Uncovered = toml::from_str(&file).expect("uncovered.toml parses");
    let mut listed = BTreeSet::new();
    let mut problems = Vec::new();
    for e in &unc.uncovered {
        if !listed.insert(e.id.clone()) {
            problems.push(format!("{} is listed twice in uncovered.toml", e.id));
        }
        if e.reason.trim().len() < 10 {
            problems.push(format!("{} has no real reason in uncovered.toml", e.id));
        }
        match levels.get(e.id.as_str()) {
            None => problems.push(format!(
                "uncovered.toml lists {}, which spec/protocol.md does not define",
                e.id
            )),
            Some(l) if *l != Level::Must => problems.push(format!(
                "uncovered.toml lists {}, which is not a MUST",
                e.id
            )),
            _ => {}
        }
        if let Some(cases) = covered.get(&e.id) {
            problems.push(format!(
                "uncovered.toml lists {}, but {} cover(s) it",
                e.id,
                cases.join(", ")
            ));
        }
    }
    let musts: Vec<&str> = levels
        .iter()
        .filter(|(_, l)| **l == Level::Must)
        .map(|(id, _)| *id)
        .collect();
    for id in &musts {
        if !covered.contains_key(*id) && !listed.contains(*id) {
            problems.push(format!(
                "{id} (MUST) has no case and is not in uncovered.toml"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let n_cov = musts.iter().filter(|id| covered.contains_key(**id)).count();
    println!(
        "{} MUST requirements: {n_cov} covered by cases, {} listed as uncovered",
        musts.len(),
        listed.len()
    );
}

#[test]
fn embedded_spec_and_examples_are_current() {
    let md = std::fs::read_to_string(spec().join("protocol.md")).expect("spec/protocol.md");
    assert!(
        md == ferry_conformance::spec::PROTOCOL_MD,
        "rebuild: the embedded spec/protocol.md is stale"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(spec().join("examples"))
        .expect("spec/examples")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .map(|n| n.trim_end_matches(".txt").to_owned())
        .collect();
    on_disk.sort();
    let embedded: Vec<String> = ferry_conformance::embedded_examples()
        .iter()
        .map(|(stem, _)| (*stem).to_owned())
        .collect();
    assert_eq!(
        embedded, on_disk,
        "src/server/replay.rs must embed exactly the transcripts of the crate's spec/examples"
    );
    for (stem, text) in ferry_conformance::embedded_examples() {
        let disk =
            std::fs::read_to_string(spec().join(format!("examples/{stem}.txt"))).expect("example");
        assert!(disk == *text, "{stem}: the embedded copy is stale");
        ferry_transcript::Transcript::parse(text).unwrap_or_else(|e| panic!("{stem}: {e}"));
    }
}
