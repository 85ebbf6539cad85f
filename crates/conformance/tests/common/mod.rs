//! What both reference runs (`reference.rs`, `reference_async.rs`) check about a report.

use ferry_conformance::{Report, Verdict};

/// The cases that did not pass, with their details.
pub(crate) fn not_passed(r: &Report) -> Vec<(String, String)> {
    r.cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Informational))
        .map(|c| {
            (
                c.id.clone(),
                format!(
                    "{} {}",
                    c.verdict,
                    ferry_conformance::report::detail_lines(c).join(" / ")
                ),
            )
        })
        .collect()
}

/// The cases that did not pass must be exactly the `known` ones (case ID, reason) of this
/// kind of run: like Autobahn's expected results, a fix must also remove its entry.
pub(crate) fn check(r: &Report, what: &str, known: &[(&str, &str)]) {
    let bad = not_passed(r);
    let unexpected: Vec<_> = bad
        .iter()
        .filter(|(id, _)| !known.iter().any(|(k, _)| k == id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{what}: cases that did not pass:\n{unexpected:#?}"
    );
    let prefix = format!("{}/", r.kind.as_str());
    let fixed: Vec<_> = known
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && !bad.iter().any(|(id, _)| id == k))
        .collect();
    assert!(
        fixed.is_empty(),
        "{what}: known failures now pass, remove them from known: {fixed:?}"
    );
    println!("{what}: {}", r.summary_line());
}

/// The hooks for an in-process test server: its shutdown handle, and a touch that changes a
/// file of its folder directly.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn hooks_for(
    server: &ferry_test_support::TestServer,
    grace: std::time::Duration,
) -> ferry_conformance::Hooks {
    use ferry_conformance::{Hook, Hooks};
    let shutdown = server.shutdown_handle().clone();
    let root = server.root.clone();
    Hooks {
        shutdown: Some(Hook::call(
            "trigger the test server's shutdown",
            move |_| {
                shutdown.trigger();
                Ok(())
            },
        )),
        shutdown_grace: Some(grace),
        touch: Some(Hook::call(
            "change a file of the test server's folder",
            move |args| {
                let arg = |k: &str| args.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| *v);
                let path = root.join(arg("name"));
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                match arg("how") {
                    "append" => std::io::Write::write_all(&mut &f, b"x"),
                    _ => f.set_len(1),
                }
                .map_err(|e| e.to_string())
            },
        )),
    }
}

/// The reference client libraries' `rget` (the adapters of `reference.rs` and
/// `reference_async.rs`), as `ferry get -r` does it: the listing of the folder `name` (read
/// by `list`, which checks it and leaves out the entries it skips, TREE-14), `{dir}/{name}`
/// and every folder beneath it made one level at a time without following a symbolic link,
/// and the files to download, as (path on the server, local file) for `get_paths`.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn rget_files(
    list: &mut dyn FnMut(
        ferry_wire::tree::Folder,
    )
        -> Result<ferry_wire::tree::TreeListing, ferry_client_core::ClientError>,
    dir: &std::path::Path,
    name: &str,
) -> Result<Vec<(ferry_wire::TreePath, std::path::PathBuf)>, Box<dyn std::error::Error>> {
    use ferry_client_core::tree::{local_file, make_local_folder};
    use ferry_wire::TreePath;
    use ferry_wire::tree::{EntryKind, Folder};
    let folder = TreePath::new(name)?;
    let listing = list(Folder::Path(folder.clone()))?;
    let base = make_local_folder(dir, Some(&TreePath::from(folder.split_last().1)))?;
    let mut files = Vec::new();
    for e in &listing.entries {
        match e.kind {
            EntryKind::Folder => {
                make_local_folder(&base, Some(&e.path))?;
            }
            EntryKind::File { .. } => files.push((
                TreePath::new(format!("{folder}/{}", e.path))?,
                local_file(&base, &e.path)?,
            )),
        }
    }
    Ok(files)
}
