//! Client cases for recursive downloads (`rget`, the `tree` extension, section 17): a
//! correct tree, listings that are not valid (order, a path twice, an MTIME that is no
//! date: nothing created, failure), entries whose only fault is their path (skipped, the
//! rest downloaded), a file listed beneath a file, symbolic links at a level of the
//! destination (nothing written through them, TREE-14, NAME-10), and a server that does not
//! offer `tree` (EXT-3).

use std::path::Path;

use ferry_wire::TreePath;

use super::cases::{MTIME, failed, nothing_outside, succeeded};
use super::{ClientCase, GREETING, Mock, Op, Outcome, TreeScript, tree};
use crate::case::{Done, Res, ensure};

/// The folder most cases download.
const FOLDER: &str = "cf-tree";

/// The folder outside `{dir}` the link cases point into (`nothing_outside` leaves `keep*`
/// to the case).
const OUTSIDE: &str = "keep-outside";

/// `len` octets of content that differ with `seed`, including LF, CR, NUL and non-UTF-8.
fn data(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7 + 3) % 251) as u8)
        .collect()
}

/// The greeting of a server offering `tree`.
fn tree_greeting() -> Vec<u8> {
    GREETING.replace('\n', " ext=tree\n").into_bytes()
}

fn tree_mock(script: TreeScript) -> Mock {
    Mock {
        greeting: tree_greeting(),
        tree: Some(script),
        ..Mock::default()
    }
}

fn rget(id: &str, title: &str, reqs: &[&str], mock: Mock, judge: JudgeFn) -> ClientCase {
    ClientCase::new(id, title, reqs, Op::RGet, mock, judge).name(FOLDER)
}

type JudgeFn = fn(&Outcome, &str) -> Res<Done>;

// ------------------------------------------------------------------- judges ---

/// The tree the case served (every `rget` case serves one).
fn script(o: &Outcome) -> &TreeScript {
    static NONE: TreeScript = TreeScript {
        entries: Vec::new(),
        files: Vec::new(),
    };
    o.script.as_ref().unwrap_or(&NONE)
}

/// Whether a script's entry is a folder.
fn is_folder(head: &[u8]) -> bool {
    head.starts_with(b"d ")
}

/// What a correct client leaves in `{dir}`: `{name}/`, then the entries with valid paths
/// (the others are skipped, NAME-14), folders with a trailing `/`; sorted as [`tree`] sorts.
fn expected(o: &Outcome) -> Vec<String> {
    let mut want = vec![format!("{}/", o.name)];
    for (head, path) in &script(o).entries {
        if let Ok(p) = TreePath::from_bytes(path) {
            let slash = if is_folder(head) { "/" } else { "" };
            want.push(format!("{}/{p}{slash}", o.name));
        }
    }
    want.sort();
    want
}

/// Exit 0, and `{dir}` holds exactly `{name}` with the valid entries, each file with its
/// content; nothing outside `{dir}`.
fn ok_tree(o: &Outcome, req: &str) -> Res<Done> {
    succeeded(o, req)?;
    let want = expected(o);
    let got = tree(&o.dir);
    ensure(
        got == want,
        req,
        format!("exactly {want:?} in {{dir}}"),
        || format!("{got:?}"),
    )?;
    for (path, content) in &script(o).files {
        if TreePath::from_bytes(path).is_err() {
            continue;
        }
        let rel = format!("{}/{}", o.name, String::from_utf8_lossy(path));
        let read = std::fs::read(o.dir.join(&rel)).unwrap_or_default();
        ensure(
            read == *content,
            req,
            format!("{{dir}}/{rel} with the {} octets sent", content.len()),
            || format!("{} octets that differ", read.len()),
        )?;
    }
    nothing_outside(o, "TREE-14")?;
    Ok(Done::Pass)
}

/// Nothing in `{dir}` but perhaps an empty `{dir}/{name}` (a client may make the folder it
/// was asked for before it lists).
fn nothing_in_dir(o: &Outcome, req: &str, what: &str) -> Res<()> {
    let got = tree(&o.dir);
    let top = format!("{}/", o.name);
    ensure(
        got.is_empty() || got == [top.as_str()],
        req,
        format!("nothing created in {{dir}} ({what}; at most an empty {{dir}}/{top})"),
        || format!("{got:?}"),
    )
}

/// A listing that is not valid: failure, nothing created from it.
fn invalid_listing(o: &Outcome, req: &str) -> Res<Done> {
    nothing_in_dir(o, req, "the listing is not valid")?;
    nothing_outside(o, "TREE-14")?;
    failed(o, req)?;
    Ok(Done::Pass)
}

/// A file listed beneath a name the listing gives as a file: both cannot be created, so a
/// client that read the recursive listing fails (one that lists folder by folder never sees
/// `a/b.txt`: `a` is a file); nothing outside `{dir}`, and each file created holds its own
/// content.
fn conflict(o: &Outcome, req: &str) -> Res<Done> {
    nothing_outside(o, "TREE-14")?;
    for (path, content) in &script(o).files {
        let rel = format!("{}/{}", o.name, String::from_utf8_lossy(path));
        let p = o.dir.join(&rel);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            let read = std::fs::read(&p).unwrap_or_default();
            ensure(
                read == *content,
                req,
                format!(
                    "{{dir}}/{rel}, if created, with its own {} octets",
                    content.len()
                ),
                || format!("{} octets that differ", read.len()),
            )?;
        }
    }
    let recursive = o
        .log
        .requests
        .iter()
        .any(|r| r.starts_with(b"list ") && r.windows(9).any(|w| w == b"recursive"));
    if recursive {
        failed(o, req)?;
    }
    Ok(Done::Pass)
}

/// The folder outside `{dir}` a link points into is still empty; exit status free.
fn outside_empty(o: &Outcome, req: &str) -> Res<Done> {
    let got = tree(&o.work.join(OUTSIDE));
    ensure(
        got.is_empty(),
        req,
        "nothing written through the symbolic link (the folder it points to stays empty)",
        || format!("{OUTSIDE}/ now holds {got:?}"),
    )?;
    nothing_outside(o, "TREE-14")?;
    Ok(Done::Pass)
}

/// The file outside `{dir}` a link at a file's name points to is unchanged; exit status free.
fn outside_file_kept(o: &Outcome, req: &str) -> Res<Done> {
    let got = tree(&o.work.join(OUTSIDE));
    ensure(
        got == ["target.txt"],
        req,
        format!("{OUTSIDE}/ holding only target.txt"),
        || format!("{got:?}"),
    )?;
    let read = std::fs::read(o.work.join(OUTSIDE).join("target.txt")).unwrap_or_default();
    ensure(
        read == b"keep\n",
        req,
        "the file the symbolic link points to unchanged (never written through)",
        || format!("{} octets now", read.len()),
    )?;
    nothing_outside(o, "TREE-14")?;
    Ok(Done::Pass)
}

/// A server without `tree`: failure (there are no folders to download); what the client
/// sent is checked by the scripted server (EXT-3).
fn no_tree(o: &Outcome, req: &str) -> Res<Done> {
    let sent: Vec<String> = o
        .log
        .requests
        .iter()
        .filter(|r| r.starts_with(b"enable") || r.starts_with(b"list"))
        .map(|r| crate::net::show(r).into())
        .collect();
    ensure(
        sent.is_empty(),
        "EXT-3",
        "no request of the `tree` extension to a server that did not list it",
        || format!("{sent:?}"),
    )?;
    nothing_in_dir(o, req, "the server has no folders")?;
    nothing_outside(o, req)?;
    failed(o, req)?;
    Ok(Done::Pass)
}

// -------------------------------------------------------------------- setups ---

fn outside(work: &Path) -> std::io::Result<std::path::PathBuf> {
    let out = work.join(OUTSIDE);
    std::fs::create_dir_all(&out)?;
    Ok(out)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "symbolic links are made on Unix only",
    ))
}

/// `{dir}/{name}` is a symbolic link to a folder outside `{dir}`.
fn link_top(dir: &Path, work: &Path, name: &str) -> std::io::Result<()> {
    let out = outside(work)?;
    symlink(&out, &dir.join(name))
}

/// `{dir}/{name}/sub` is a symbolic link to a folder outside `{dir}`.
fn link_sub(dir: &Path, work: &Path, name: &str) -> std::io::Result<()> {
    let out = outside(work)?;
    std::fs::create_dir(dir.join(name))?;
    symlink(&out, &dir.join(name).join("sub"))
}

/// `{dir}/{name}/a.txt` is a symbolic link to a file outside `{dir}`.
fn link_file(dir: &Path, work: &Path, name: &str) -> std::io::Result<()> {
    let out = outside(work)?;
    std::fs::write(out.join("target.txt"), b"keep\n")?;
    std::fs::create_dir(dir.join(name))?;
    symlink(&out.join("target.txt"), &dir.join(name).join("a.txt"))
}

// --------------------------------------------------------------------- cases ---

/// Nested folders, an empty folder, an empty file, names with spaces and non-ASCII, MTIMEs
/// of years 0000 and 9999 (DIR-9).
fn correct() -> TreeScript {
    TreeScript::default()
        .folder(b"a")
        .file(b"a/b c.txt", &data(1, 3000))
        .folder(b"a/empty")
        .folder(b"a/sub")
        .file("a/sub/天线15.doc".as_bytes(), &data(2, 1500))
        .file(b"top.bin", &data(3, 2500))
        .file(b"z z.txt", b"")
        .folder("é".as_bytes())
        .file("é/my report (final).pdf".as_bytes(), &data(4, 7))
        .line("f 5 0000-01-01T00:00:00Z - ", b"old.txt")
        .line("f 5 9999-12-31T23:59:59Z - ", b"new.txt")
        .sorted()
        .with_files(&[(b"old.txt", b"old!\n"), (b"new.txt", b"new!\n")])
}

impl TreeScript {
    /// Adds contents for entries added with [`TreeScript::line`].
    fn with_files(mut self, files: &[(&[u8], &[u8])]) -> Self {
        self.files
            .extend(files.iter().map(|(p, d)| (p.to_vec(), d.to_vec())));
        self
    }
}

/// `a.txt`, `sub/`, `sub/ok.txt`, `z.txt` and the entries `bad`, sorted.
fn with_bad(bad: &[(&str, &[u8])]) -> TreeScript {
    let mut s = TreeScript::default()
        .file(b"a.txt", &data(5, 100))
        .folder(b"sub")
        .file(b"sub/ok.txt", &data(6, 200))
        .file(b"z.txt", &data(7, 300));
    for (head, path) in bad {
        s = s.line(head, path);
    }
    s.sorted()
}

pub(crate) fn all() -> Vec<ClientCase> {
    let f = format!("f 5 {MTIME} - ");
    let d = format!("d - {MTIME} - ");
    let deep: Vec<u8> = [&b"p/".repeat(64)[..], b"deep.txt"].concat();
    vec![
        rget(
            "TREE-14/1",
            "rget: nested folders, an empty folder, names with spaces and non-ASCII: exactly that tree",
            &["TREE-14", "TREE-1", "DIR-9"],
            tree_mock(correct()),
            ok_tree,
        )
        .name("cf tree é"),
        rget(
            "TREE-14/2",
            "rget: entries out of order: failure, nothing created",
            &["TREE-14", "DIR-10", "ERR-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"b.txt", &data(1, 10))
                    .file(b"a.txt", &data(2, 10)),
            ),
            invalid_listing,
        ),
        rget(
            "TREE-14/3",
            "rget: a path listed twice: failure, nothing created",
            &["TREE-14", "DIR-10", "ERR-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"a.txt", &data(1, 10))
                    .file(b"a.txt", &data(2, 10))
                    .file(b"b.txt", &data(3, 10)),
            ),
            invalid_listing,
        ),
        rget(
            "TREE-14/4",
            "rget: a path listed as a folder and as a file: failure, nothing created",
            &["TREE-14", "DIR-10", "ERR-10"],
            tree_mock(
                TreeScript::default()
                    .folder(b"x")
                    .file(b"x", &data(1, 10))
                    .file(b"y.txt", &data(2, 10)),
            ),
            invalid_listing,
        ),
        rget(
            "TREE-14/5",
            "rget: an entry with MTIME 2023-02-30T00:00:00Z: failure, nothing created",
            &["TREE-14", "DIR-9", "ERR-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"a.txt", &data(1, 10))
                    .line("f 5 2023-02-30T00:00:00Z - ", b"b.txt")
                    .with_files(&[(b"b.txt", b"bbbb\n")]),
            ),
            invalid_listing,
        ),
        rget(
            "TREE-14/6",
            "rget: a skipped path (`../x`) out of order still makes the listing invalid",
            &["TREE-14", "DIR-10", "NAME-14", "ERR-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"a.txt", &data(1, 10))
                    .file(b"z.txt", &data(2, 10))
                    .line(&f, b"../x"),
            ),
            invalid_listing,
        ),
        rget(
            "TREE-14/7",
            "rget: paths with `..` and `.` names (files and a folder): skipped, the rest downloaded",
            &["TREE-14", "NAME-14", "TREE-3", "NAME-10"],
            tree_mock(with_bad(&[
                (&f, b"../escape.txt"),
                (&d, b"../evil"),
                (&f, b"./dot.txt"),
                (&f, b"sub/../../up.txt"),
                (&f, b"sub/./here.txt"),
                (&f, b".."),
            ])),
            ok_tree,
        ),
        rget(
            "TREE-14/8",
            "rget: a leading `/`, empty names, a trailing `/`, 65 names: skipped, the rest downloaded",
            &["TREE-14", "NAME-14", "TREE-3", "NAME-10"],
            tree_mock(with_bad(&[
                (&f, b"/abs.txt"),
                (&d, b"/tmp"),
                (&f, b"sub//double.txt"),
                (&d, b"sub/trailing/"),
                (&f, &deep),
            ])),
            ok_tree,
        ),
        rget(
            "TREE-14/9",
            "rget: paths with NUL, not UTF-8, a hidden name, not NFC, a backslash: skipped, the rest downloaded",
            &["TREE-14", "NAME-14", "TREE-3", "NAME-9"],
            tree_mock(with_bad(&[
                (&f, b"sub/nul\0.txt"),
                (&f, b"sub/caf\xe9.txt"),
                (&f, b"sub/.hidden"),
                (&f, "sub/e\u{301}.txt".as_bytes()),
                (&f, b"sub\\..\\..\\win.txt"),
            ])),
            ok_tree,
        ),
        rget(
            "TREE-14/10",
            "rget: a file listed beneath a name listed as a file: failure (recursive list), nothing outside {dir}",
            &["TREE-14", "NAME-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"a", &data(1, 50))
                    .file(b"a/b.txt", &data(2, 60))
                    .file(b"z.txt", &data(3, 70)),
            ),
            conflict,
        ),
        rget(
            "TREE-14/11",
            "rget: {dir}/{name} is a symbolic link to a folder outside {dir}: nothing written through it",
            &["TREE-14", "NAME-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"a.txt", &data(1, 50))
                    .folder(b"sub")
                    .file(b"sub/b.txt", &data(2, 60)),
            ),
            outside_empty,
        )
        .setup(link_top),
        rget(
            "TREE-14/12",
            "rget: {dir}/{name}/sub is a symbolic link to a folder outside {dir}: nothing written through it",
            &["TREE-14", "NAME-10"],
            tree_mock(
                TreeScript::default()
                    .file(b"a.txt", &data(1, 50))
                    .folder(b"sub")
                    .folder(b"sub/deeper")
                    .file(b"sub/deeper/c.txt", &data(3, 70))
                    .file(b"sub/x.txt", &data(2, 60)),
            ),
            outside_empty,
        )
        .setup(link_sub),
        rget(
            "TREE-14/13",
            "rget: {dir}/{name}/a.txt is a symbolic link to a file outside {dir}: not written through",
            &["NAME-10", "TREE-14"],
            tree_mock(
                TreeScript::default()
                    .file(b"a.txt", &data(1, 50))
                    .file(b"z.txt", &data(2, 60)),
            ),
            outside_file_kept,
        )
        .setup(link_file),
        rget(
            "EXT-3/1",
            "rget from a server that does not offer `tree`: no `enable` or `list`, failure",
            &["EXT-3"],
            Mock {
                tree: Some(correct()),
                ..Mock::default()
            },
            no_tree,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::listing_valid;

    /// Exactly the listings of the cases judged by `invalid_listing` are not valid (the
    /// scripted server holds the connection after those only); the judges' expectations
    /// leave the bad paths out.
    #[test]
    fn scripts_are_what_the_cases_say() {
        let invalid = [
            "TREE-14/2",
            "TREE-14/3",
            "TREE-14/4",
            "TREE-14/5",
            "TREE-14/6",
        ];
        for case in all() {
            let Some(s) = &case.mock.tree else {
                panic!("{}: no tree", case.info.id)
            };
            let lines: Vec<Vec<u8>> = s
                .entries
                .iter()
                .map(|(head, path)| [head.as_slice(), path, b"\n"].concat())
                .collect();
            let id = case.info.id.trim_start_matches("client/");
            assert_eq!(listing_valid(&lines), !invalid.contains(&id), "{id}");
        }
        let bad = with_bad(&[(&format!("f 5 {MTIME} - "), b"../x")]);
        let valid: Vec<_> = bad
            .entries
            .iter()
            .filter(|(_, p)| TreePath::from_bytes(p).is_ok())
            .collect();
        assert_eq!(valid.len(), 4);
        let e = correct();
        assert_eq!(e.entries.len(), 11);
        assert_eq!(e.files.len(), 7);
    }
}
