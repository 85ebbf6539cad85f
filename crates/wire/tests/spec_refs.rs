//! Every requirement ID cited anywhere in the workspace's Rust sources exists in
//! spec/protocol.md, so a citation can always be looked up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PREFIXES: &[&str] = &[
    "FRAME", "CONN", "HELLO", "VER", "EXT", "NAME", "DIR", "GET", "PUT", "DATA", "SUM", "PIPE",
    "ERR", "TIME", "CLOSE", "SEC", "TLS", "AUTH", "TREE",
];

fn ids_in(text: &str, out: &mut BTreeSet<String>) {
    let bytes = text.as_bytes();
    for p in PREFIXES {
        let pat = format!("{p}-");
        let mut from = 0;
        while let Some(at) = text[from..].find(&pat) {
            let start = from + at;
            let digits: String = text[start + pat.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let boundary = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'-');
            if boundary && !digits.is_empty() {
                out.insert(format!("{p}-{digits}"));
            }
            from = start + pat.len();
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn cited_requirement_ids_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = std::fs::read_to_string(root.join("spec/protocol.md")).expect("protocol.md");
    let mut files = Vec::new();
    for dir in ["crates", "tests", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} sources", files.len());
    let mut missing = Vec::new();
    for f in &files {
        let mut ids = BTreeSet::new();
        ids_in(&std::fs::read_to_string(f).unwrap_or_default(), &mut ids);
        for id in ids {
            if !spec.contains(&format!("**[{id}]**")) {
                missing.push(format!(
                    "{}: {id}",
                    f.strip_prefix(&root).unwrap_or(f).display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "requirement IDs cited but not defined in spec/protocol.md:\n{}",
        missing.join("\n")
    );
}
