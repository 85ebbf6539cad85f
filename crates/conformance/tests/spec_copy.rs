//! The runner embeds the crate's own copy of the specification (`crates/conformance/spec/`),
//! so that the crate builds from its package, where the workspace's `spec/` is absent. This
//! test keeps that copy byte-identical to the workspace's `spec/`: `protocol.md` and every
//! `examples/*.txt`, no file missing and none extra.
//!
//! Where the test runs decides what it can check, and it never guesses from a missing folder:
//! - in the ferry workspace (`../../Cargo.toml` is a `[workspace]` whose members include
//!   `crates/conformance`): the full comparison; a missing `spec/` there is a failure;
//! - in a package made by `cargo package` (it writes `Cargo.toml.orig` next to the manifest;
//!   so do `cargo vendor` and crates.io downloads): there is no original to compare with. The
//!   copy was compared when the workspace's tests ran at the commit the package was made from
//!   (CI runs them before `cargo package`); here the test checks the copy is complete;
//! - anywhere else it fails, saying why, rather than pass without having compared anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

enum Location {
    /// The workspace root.
    Workspace(PathBuf),
    /// An unpacked `.crate`.
    Package,
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn locate() -> Location {
    let root = crate_dir().join("../..");
    if let Ok(manifest) = std::fs::read_to_string(root.join("Cargo.toml"))
        && manifest.contains("[workspace]")
        && manifest.contains("\"crates/conformance\"")
    {
        return Location::Workspace(root);
    }
    if crate_dir().join("Cargo.toml.orig").is_file() {
        return Location::Package;
    }
    panic!(
        "{} is neither crates/conformance of the ferry workspace (../../Cargo.toml with \
         [workspace] listing \"crates/conformance\") nor an unpacked package (Cargo.toml.orig): \
         cannot tell whether spec/ is the specification",
        crate_dir().display()
    );
}

/// `protocol.md` and `examples/NAME.txt` of a spec folder, by relative path.
fn files(spec: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    out.insert("protocol.md".to_owned(), read(&spec.join("protocol.md")));
    let dir = spec.join("examples");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".txt") {
            out.insert(format!("examples/{name}"), read(&dir.join(&*name)));
        }
    }
    out
}

#[test]
fn the_crate_copy_of_the_spec_is_identical_to_the_workspace_spec() {
    let copy = files(&crate_dir().join("spec"));
    assert!(
        copy.len() > 30,
        "the crate's spec/ is nearly empty: {:?}",
        copy.keys()
    );
    match locate() {
        Location::Package => {
            println!(
                "unpacked package: no workspace spec/ to compare with; the copy has {} files",
                copy.len()
            );
        }
        Location::Workspace(root) => {
            let original = files(&root.join("spec"));
            let fix = "refresh it from the workspace root: \
                       rm -r crates/conformance/spec/examples && mkdir crates/conformance/spec/examples && \
                       cp spec/protocol.md crates/conformance/spec/ && \
                       cp spec/examples/*.txt crates/conformance/spec/examples/";
            let missing: Vec<&String> =
                original.keys().filter(|k| !copy.contains_key(*k)).collect();
            let extra: Vec<&String> = copy.keys().filter(|k| !original.contains_key(*k)).collect();
            let differ: Vec<&String> = original
                .iter()
                .filter(|(k, v)| copy.get(*k).is_some_and(|c| c != *v))
                .map(|(k, _)| k)
                .collect();
            assert!(
                missing.is_empty() && extra.is_empty() && differ.is_empty(),
                "crates/conformance/spec/ is not a copy of spec/: missing {missing:?}, \
                 extra {extra:?}, different {differ:?}; {fix}"
            );
        }
    }
}
