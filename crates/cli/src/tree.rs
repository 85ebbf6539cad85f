//! The commands of the `tree` extension (spec section 17): `ls`, `rm`, `mv`, `mkdir`,
//! `rmdir`, `get -r`, `put -r` and `mirror`. Each works on an open session
//! ([`AnyClient`]), so that `ferry shell` runs the same code; the one-shot commands connect,
//! run it and close.
//!
//! Everything that can be pipelined is: a batch of `mkdir`s or `delete`s goes out as one run
//! of requests, and the transfers of a recursive get or put are one pipelined batch.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use ferry_client_core::session::{Outcome, TreeOp};
use ferry_client_core::tree::{
    LocalKind, LocalTree, MirrorPlan, Side, hash_file, local_file, make_local_folder, mirror_plan,
    remote_sides, walk_local,
};
use ferry_sync::client::{ClientError, GetOptions, PutOptions, visible};
use ferry_wire::tree::{EntryKind, Folder, ListOptions, TreeListing, WRONG_KIND};
use ferry_wire::{Code, FileName, PutMode, TreePath};

use crate::ClientArgs;
use crate::addr::ServerAddr;
use crate::engine::AnyClient;
use crate::exit::{self, Worst};
use crate::hints::{self, Stage};
use crate::progress::Bars;

/// Where messages about a session's failures go, with their hints.
pub(crate) struct Ctx<'a> {
    /// The server.
    pub(crate) addr: &'a ServerAddr,
    /// `--timeout`, for the hints.
    pub(crate) timeout: std::time::Duration,
}

impl Ctx<'_> {
    /// Prints `ferry: WHAT: ERROR` (with what it means) and returns the exit code.
    pub(crate) fn fail(&self, what: &str, e: &ClientError) -> u8 {
        let text = hints::explain(e, self.addr, self.timeout, Stage::Session);
        if what.is_empty() {
            eprintln!("ferry: {text}");
        } else {
            eprintln!("ferry: {what}: {text}");
        }
        exit::for_error(e)
    }
}

/// The error of a server without the extension (EXT-1): exit 1, as `err 503 unsupported`.
pub(crate) fn not_offered() -> ClientError {
    ClientError::NotOffered {
        extension: ferry_wire::tree::EXTENSION,
        what: "folders, delete or rename",
    }
}

/// A path typed by a user: each name converted to NFC (NAME-8), a trailing `/` allowed.
pub(crate) fn parse_path(s: &str) -> Result<TreePath, String> {
    let s = s.strip_suffix('/').unwrap_or(s);
    let names: Result<Vec<FileName>, String> = s
        .split('/')
        .map(|n| FileName::from_local(n).map_err(|e| format!("{e}")))
        .collect();
    TreePath::from_names(&names?).map_err(|e| e.to_string())
}

/// A folder typed by a user: `.` (or nothing, or `/`) is the served folder.
pub(crate) fn parse_folder(s: &str) -> Result<Folder, String> {
    match s {
        "" | "." | "/" | "./" => Ok(Folder::Root),
        s => parse_path(s).map(Folder::Path),
    }
}

/// `base/rel`, or `rel` under the served folder.
fn under(base: &Folder, rel: &TreePath) -> Result<TreePath, ClientError> {
    match base {
        Folder::Root => Ok(rel.clone()),
        Folder::Path(b) => {
            TreePath::new(format!("{b}/{rel}")).map_err(|e| ClientError::LocalName {
                name: format!("{b}/{rel}"),
                reason: e.to_string(),
            })
        }
    }
}

/// Warns about the entries of a listing skipped because their paths are not valid here
/// (TREE-14), shown escaped as `dir`'s are (NAME-15).
fn warn_skipped(listing: &TreeListing) {
    for s in &listing.skipped {
        let not_nfc = matches!(
            s.error,
            ferry_wire::PathError::Name {
                error: ferry_wire::NameError::NotNfc,
                ..
            }
        );
        eprintln!(
            "ferry: warning: skipped a listed entry whose path is not valid ({}): {}",
            s.error,
            crate::commands::shown_octets(&s.path, not_nfc)
        );
    }
}

/// One line of `ferry ls --json`.
#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    path: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
}

/// `ls [PATH] [-r] [--digests] [--json]`: folders end with `/`; sizes of files, `-` for
/// folders.
pub(crate) fn ls(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    folder: Folder,
    options: ListOptions,
    json: bool,
    out: &mut dyn io::Write,
) -> u8 {
    let listing = match client.list(folder.clone(), options) {
        Ok(l) => l,
        Err(e) => return ctx.fail(&format!("ls {folder}"), &e),
    };
    warn_skipped(&listing);
    let width = listing
        .entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File { size, .. } => size.to_string().len(),
            EntryKind::Folder => 1,
        })
        .max()
        .unwrap_or(1);
    let written = listing.entries.iter().try_for_each(|e| {
        let (size, digest) = match e.kind {
            EntryKind::File { size, digest } => (Some(size), digest.map(|d| d.to_string())),
            EntryKind::Folder => (None, None),
        };
        if json {
            let obj = JsonEntry {
                path: e.path.as_str(),
                kind: if size.is_some() { "file" } else { "folder" },
                size,
                mtime: e.mtime.to_string(),
                digest: digest.clone(),
            };
            let line = serde_json::to_string(&obj).map_err(io::Error::other)?;
            return writeln!(out, "{line}");
        }
        let size = size.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let slash = if matches!(e.kind, EntryKind::Folder) {
            "/"
        } else {
            ""
        };
        let digest = if options.digests {
            format!("  {}", digest.as_deref().unwrap_or("-"))
        } else {
            String::new()
        };
        writeln!(
            out,
            "{size:>width$}  {}{digest}  {}{slash}",
            e.mtime,
            visible(e.path.as_str())
        )
    });
    match written.and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("ferry: writing the listing: {e}");
            exit::LOCAL_IO
        }
    }
}

/// Runs `ops` pipelined; reports each failure (unless `ok_if` accepts it) as `verb PATH`;
/// returns the worst exit code.
fn run_ops(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    ops: &[TreeOp],
    ok_if: &dyn Fn(&TreeOp, &ClientError) -> bool,
) -> u8 {
    let mut worst = Worst::default();
    for (op, result) in ops.iter().zip(client.tree_many(ops)) {
        match result {
            Ok(_) => {}
            Err(e) if ok_if(op, &e) => {}
            Err(e) => {
                worst.add(ctx.fail(&describe(op), &e));
                if e.code() == Some(WRONG_KIND) {
                    hint_kind(op);
                }
            }
        }
    }
    worst.code()
}

fn describe(op: &TreeOp) -> String {
    match op {
        TreeOp::List { folder, .. } => format!("ls {}", visible(&folder.to_string())),
        TreeOp::Mkdir(p) => format!("mkdir {}", visible(p.as_str())),
        TreeOp::Rmdir(p) => format!("rmdir {}", visible(p.as_str())),
        TreeOp::Delete(p) => format!("rm {}", visible(p.as_str())),
        TreeOp::Rename { from, to } => {
            format!("mv {} {}", visible(from.as_str()), visible(to.as_str()))
        }
    }
}

fn hint_kind(op: &TreeOp) {
    match op {
        TreeOp::Delete(_) => eprintln!(
            "ferry: hint: it is a folder: `rm -r` removes it with everything in it, `rmdir` an \
             empty one"
        ),
        TreeOp::Rmdir(_) => eprintln!("ferry: hint: it is a file: `rm` removes it"),
        _ => {}
    }
}

fn exists(e: &ClientError) -> bool {
    e.code() == Some(Code::EXISTS)
}

/// `mkdir PATH... [-p]`: with `-p`, every missing parent too, and a folder that exists is
/// fine (one `mkdir` per level, pipelined: TREE-8 makes one level).
pub(crate) fn mkdir(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    paths: &[TreePath],
    parents: bool,
) -> u8 {
    let mut ops = Vec::new();
    for p in paths {
        if parents {
            for level in prefixes(p) {
                let op = TreeOp::Mkdir(level);
                if !ops.contains(&op) {
                    ops.push(op);
                }
            }
        } else {
            ops.push(TreeOp::Mkdir(p.clone()));
        }
    }
    run_ops(client, ctx, &ops, &|_, e| parents && exists(e))
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`.
fn prefixes(p: &TreePath) -> Vec<TreePath> {
    let names: Vec<&str> = p.names().collect();
    (1..=names.len())
        .filter_map(|n| TreePath::new(names[..n].join("/")).ok())
        .collect()
}

/// `rmdir PATH...`: empty folders.
pub(crate) fn rmdir(client: &mut AnyClient, ctx: &Ctx<'_>, paths: &[TreePath]) -> u8 {
    let ops: Vec<TreeOp> = paths.iter().cloned().map(TreeOp::Rmdir).collect();
    run_ops(client, ctx, &ops, &|_, _| false)
}

/// `mv FROM TO`: a file or a folder, never replacing (TREE-11).
pub(crate) fn mv(client: &mut AnyClient, ctx: &Ctx<'_>, from: &TreePath, to: &TreePath) -> u8 {
    let op = TreeOp::Rename {
        from: from.clone(),
        to: to.clone(),
    };
    match client.tree_many(std::slice::from_ref(&op)).pop() {
        Some(Ok(_)) => exit::OK,
        Some(Err(e)) => {
            let code = ctx.fail(&describe(&op), &e);
            if exists(&e) {
                eprintln!("ferry: hint: `mv` never replaces: remove TO first (`rm`) to replace it");
            }
            code
        }
        None => exit::CONNECTION,
    }
}

/// `rm PATH... [-r]`: files; with `-r` a folder and everything in it: its files deleted,
/// then its folders removed deepest first, itself last, all pipelined. A folder holding
/// entries no listing shows (hidden or invalid names, links) stays (517, TREE-9).
pub(crate) fn rm(client: &mut AnyClient, ctx: &Ctx<'_>, paths: &[TreePath], recursive: bool) -> u8 {
    if !recursive {
        let ops: Vec<TreeOp> = paths.iter().cloned().map(TreeOp::Delete).collect();
        return run_ops(client, ctx, &ops, &|_, _| false);
    }
    let mut worst = Worst::default();
    let mut ops = Vec::new();
    for p in paths {
        let options = ListOptions {
            digests: false,
            recursive: true,
        };
        match client.list(Folder::Path(p.clone()), options) {
            Ok(listing) => {
                warn_skipped(&listing);
                let mut folders = vec![p.clone()];
                for e in &listing.entries {
                    let full = match under(&Folder::Path(p.clone()), &e.path) {
                        Ok(f) => f,
                        Err(err) => {
                            worst.add(ctx.fail(&format!("rm {}", visible(p.as_str())), &err));
                            continue;
                        }
                    };
                    match e.kind {
                        EntryKind::File { .. } => ops.push(TreeOp::Delete(full)),
                        EntryKind::Folder => folders.push(full),
                    }
                }
                folders.sort_by_key(|f| std::cmp::Reverse(f.depth()));
                ops.extend(folders.into_iter().map(TreeOp::Rmdir));
            }
            // A file: deleted as `rm` does.
            Err(e) if e.code() == Some(WRONG_KIND) => ops.push(TreeOp::Delete(p.clone())),
            Err(e) => worst.add(ctx.fail(&format!("rm {}", visible(p.as_str())), &e)),
        }
    }
    worst.add(run_ops(client, ctx, &ops, &|_, _| false));
    worst.code()
}

/// Files received or sent, and the octets, for a summary.
#[derive(Debug, Default)]
struct Tally {
    files: u64,
    octets: u64,
    failed: u64,
}

/// `get -r PATH [-o DIR]`: the folder PATH (`.`: the whole served folder) into `DIR/NAME`
/// (`DIR` itself for `.`), with its subfolders. Local folders are made one level at a time
/// beneath DIR, never through a symbolic link (TREE-14); each file is downloaded as `get`
/// does (a `.ferry-part`, verified, renamed; `--continue` resumes).
pub(crate) fn get_recursive(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    folder: &Folder,
    dir: &Path,
    resume: bool,
) -> u8 {
    let options = ListOptions {
        digests: false,
        recursive: true,
    };
    let listing = match client.list(folder.clone(), options) {
        Ok(l) => l,
        Err(e) => return ctx.fail(&format!("get -r {folder}"), &e),
    };
    warn_skipped(&listing);
    // The folder's own name, as the server spells it; the user chose DIR.
    let top = match folder {
        Folder::Root => None,
        Folder::Path(p) => Some(TreePath::from(p.split_last().1)),
    };
    let mut worst = Worst::default();
    let base = match make_local_folder(dir, top.as_ref()) {
        Ok(b) => b,
        Err(e) => return ctx.fail(&format!("get -r {folder}"), &e),
    };
    let mut files = Vec::new();
    for e in &listing.entries {
        let made = match e.kind {
            EntryKind::Folder => make_local_folder(&base, Some(&e.path)).map(|_| None),
            EntryKind::File { .. } => local_file(&base, &e.path).map(Some),
        };
        match (made, under(folder, &e.path)) {
            (Ok(Some(dest)), Ok(remote)) => files.push((remote, dest)),
            (Ok(None), _) => {}
            (Err(err), _) | (_, Err(err)) => {
                worst.add(ctx.fail(&format!("get {}", visible(e.path.as_str())), &err));
            }
        }
    }
    let tally = get_files(client, ctx, &files, resume, &mut worst);
    summary("received", &tally, None);
    worst.code()
}

/// Downloads `files` pipelined; reports failures.
fn get_files(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    files: &[(TreePath, PathBuf)],
    resume: bool,
    worst: &mut Worst,
) -> Tally {
    let opts = GetOptions {
        resume,
        ..GetOptions::default()
    };
    let mut tally = Tally::default();
    if files.is_empty() {
        return tally;
    }
    let mut bars = Bars::new();
    let results = client.get_paths(files, &opts, &mut |p| bars.update(p));
    bars.finish();
    for ((remote, _), result) in files.iter().zip(results) {
        match result {
            Ok(r) => {
                tally.files += 1;
                tally.octets += r.size;
            }
            Err(e) => {
                tally.failed += 1;
                worst.add(ctx.fail(&format!("get {}", visible(remote.as_str())), &e));
            }
        }
    }
    tally
}

/// `get ADDR PATH... [-o PATH]` with paths of more than one name: as `get` places names
/// (one PATH: `-o` is the file, or a folder to save it in; several: `-o` is a folder), each
/// file under its last name.
pub(crate) fn get_by_path(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    paths: &[TreePath],
    output: Option<&Path>,
    resume: bool,
) -> u8 {
    let mut worst = Worst::default();
    // One PATH and an `-o` that is not a folder: the file itself.
    let exact = match output {
        Some(o) if paths.len() == 1 && !o.is_dir() && !crate::commands::names_folder(o) => {
            Some(o.to_path_buf())
        }
        _ => None,
    };
    let folder = output.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if exact.is_none()
        && let Err(e) = make_local_folder(&folder, None)
    {
        return ctx.fail("get", &e);
    }
    let mut files = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in paths {
        let dest = match &exact {
            Some(o) => Ok(o.clone()),
            None => ferry_sync::client::local_path(&folder, &p.split_last().1),
        };
        match dest {
            Ok(d) if !seen.insert(d.clone()) => {
                eprintln!(
                    "ferry: get {}: another PATH is saved as {} already",
                    visible(p.as_str()),
                    d.display()
                );
                worst.add(exit::USAGE);
            }
            Ok(d) => files.push((p.clone(), d)),
            Err(e) => worst.add(ctx.fail(&format!("get {}", visible(p.as_str())), &e)),
        }
    }
    get_files(client, ctx, &files, resume, &mut worst);
    worst.code()
}

/// `put FILE --as PATH` with a path of more than one name (its folder must exist).
pub(crate) fn put_by_path(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    file: &Path,
    path: &TreePath,
    replace: bool,
) -> u8 {
    let mode = if replace {
        PutMode::Replace
    } else {
        PutMode::New
    };
    let mut worst = Worst::default();
    put_files(
        client,
        ctx,
        &[(file.to_path_buf(), path.clone())],
        mode,
        &mut worst,
    );
    worst.code()
}

/// Warns about what a local walk left out.
fn warn_local_skipped(tree: &LocalTree) {
    for (path, why) in &tree.skipped {
        eprintln!("ferry: warning: skipped {}: {why}", path.display());
    }
}

/// `put -r DIR [REMOTE]`: the local folder DIR into the folder REMOTE on the server
/// (default: DIR's own name; `.`: the served folder), made with its parents if missing,
/// then every subfolder (`mkdir`, pipelined; one that exists is fine) and every file (puts,
/// pipelined). Symbolic links and special files are skipped with a warning; names are sent
/// in NFC (NAME-8).
pub(crate) fn put_recursive(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    dir: &Path,
    remote: Option<Folder>,
    replace: bool,
) -> u8 {
    let folder = match remote_or_own_name(remote, dir, "put -r") {
        Ok(f) => f,
        Err(code) => return code,
    };
    let tree = match walk_local(dir, folder.path()) {
        Ok(t) => t,
        Err(e) => return ctx.fail(&format!("put -r {}", dir.display()), &e),
    };
    warn_local_skipped(&tree);
    let mut worst = Worst::default();
    let mut ops = Vec::new();
    if let Some(p) = folder.path() {
        ops.extend(prefixes(p).into_iter().map(TreeOp::Mkdir));
    }
    let mut files = Vec::new();
    for e in &tree.entries {
        let remote = match under(&folder, &e.path) {
            Ok(r) => r,
            Err(err) => {
                worst.add(ctx.fail(&format!("put {}", e.local.display()), &err));
                continue;
            }
        };
        match e.kind {
            LocalKind::Folder => ops.push(TreeOp::Mkdir(remote)),
            LocalKind::File(_) => files.push((e.local.clone(), remote)),
        }
    }
    // A folder that exists is fine; a file in its place makes the puts beneath it fail.
    worst.add(run_ops(client, ctx, &ops, &|_, e| exists(e)));
    let mode = if replace {
        PutMode::Replace
    } else {
        PutMode::New
    };
    let tally = put_files(client, ctx, &files, mode, &mut worst);
    summary("sent", &tally, None);
    worst.code()
}

/// `dir` made absolute, for its own name (`.` has none).
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Uploads `files` pipelined; reports failures.
fn put_files(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    files: &[(PathBuf, TreePath)],
    mode: PutMode,
    worst: &mut Worst,
) -> Tally {
    let mut tally = Tally::default();
    if files.is_empty() {
        return tally;
    }
    let opts = PutOptions {
        mode,
        ..PutOptions::default()
    };
    let mut bars = Bars::new();
    let results = client.put_paths(files, &opts, &mut |p| bars.update(p));
    bars.finish();
    let mut exists_seen = false;
    for ((local, _), result) in files.iter().zip(results) {
        match result {
            Ok(r) => {
                tally.files += 1;
                tally.octets += r.size;
            }
            Err(e) => {
                tally.failed += 1;
                exists_seen |= exists(&e);
                worst.add(ctx.fail(&format!("put {}", local.display()), &e));
            }
        }
    }
    if exists_seen && mode == PutMode::New {
        eprintln!("ferry: hint: `--replace` replaces files that exist on the server");
    }
    tally
}

/// Prints `received 3 files (12 KiB)` (and what failed) on stdout.
fn summary(verb: &str, t: &Tally, extra: Option<String>) {
    let mut line = format!(
        "{verb} {} file{} ({} octets)",
        t.files,
        if t.files == 1 { "" } else { "s" },
        t.octets
    );
    if t.failed > 0 {
        line.push_str(&format!(", {} failed", t.failed));
    }
    if let Some(extra) = extra {
        line.push_str(&extra);
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Which way `mirror` copies.
pub(crate) use ferry_client_core::tree::Direction;

/// `mirror push|pull LOCAL [REMOTE] [--delete] [--dry-run]`: makes the destination hold
/// what the source holds, copying only the files whose size or digest differs (the server
/// lists digests, the local files are hashed with the same xxh3-128), making missing
/// folders, and with `--delete` removing what the source lacks (files first, then folders
/// deepest first). `--dry-run` prints the plan and changes nothing. Each step is atomic on
/// the server (TREE-12) and each download is verified, so a rerun after an interruption
/// finishes the job.
pub(crate) fn mirror(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    direction: Direction,
    local: &Path,
    remote: Option<Folder>,
    delete: bool,
    dry_run: bool,
) -> u8 {
    let folder = match remote_or_own_name(remote, local, "mirror") {
        Ok(f) => f,
        Err(code) => return code,
    };
    let what = format!("mirror {}", visible(&folder.to_string()));
    // The server's side: a folder that does not exist yet is empty.
    let options = ListOptions {
        digests: true,
        recursive: true,
    };
    // The local side is walked and hashed on a thread of its own while the server lists
    // its side: the two take about as long, and neither needs the other. Every local file
    // is hashed (its size may match the server's, which is only known after the listing).
    let walk = local.exists() || direction == Direction::Push;
    let (listed, hashed) = std::thread::scope(|s| {
        let hashing = s.spawn(|| local_side(local, folder.path(), walk));
        let listed = client.list(folder.clone(), options);
        match hashing.join() {
            Ok(hashed) => (listed, hashed),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let (remote_map, remote_exists) = match listed {
        Ok(l) => {
            warn_skipped(&l);
            (remote_sides(&l.entries), true)
        }
        // Missing on the server: empty for a push; for a pull, an error (never a reason to
        // delete the local side).
        Err(e) if e.code() == Some(Code::NOT_FOUND) && direction == Direction::Push => {
            (BTreeMap::new(), false)
        }
        Err(e) => return ctx.fail(&what, &e),
    };
    // The local side: missing is empty for a pull.
    let (tree, digests) = match hashed {
        Ok(t) => t,
        Err(e) => return ctx.fail(&what, &e),
    };
    warn_local_skipped(&tree);
    let mut worst = Worst::default();
    let local_paths: BTreeMap<TreePath, PathBuf> = tree
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.local.clone()))
        .collect();
    let mut local_map = BTreeMap::new();
    for (e, digest) in tree.entries.iter().zip(digests) {
        let side = match (&e.kind, digest) {
            (LocalKind::Folder, _) => Side::Folder,
            (&LocalKind::File(size), Some(Ok((_, d)))) => Side::File {
                size,
                digest: Some(d),
            },
            (&LocalKind::File(size), Some(Err(err))) => {
                worst.add(ctx.fail(&what, &err));
                Side::File { size, digest: None }
            }
            (&LocalKind::File(size), None) => Side::File { size, digest: None },
        };
        local_map.insert(e.path.clone(), side);
    }
    let mut plan = match direction {
        Direction::Push => mirror_plan(&local_map, &remote_map, delete),
        Direction::Pull => mirror_plan(&remote_map, &local_map, delete),
    };
    // What the walk skipped here (a link, a special file, a partial download) is not
    // missing: a push leaves the server's entry of that path, and what is beneath it, alone.
    if direction == Direction::Push && !tree.kept.is_empty() {
        let kept = |p: &TreePath| tree.kept.iter().any(|k| p.is_within(k) || k.is_within(p));
        for p in plan.delete_files.iter().chain(&plan.delete_folders) {
            if tree.kept.iter().any(|k| p.is_within(k)) {
                eprintln!(
                    "ferry: warning: {} is not deleted: its local counterpart was skipped",
                    visible(p.as_str())
                );
            }
        }
        plan.delete_files.retain(|p| !kept(p));
        plan.delete_folders.retain(|p| !kept(p));
    }
    for c in &plan.conflicts {
        eprintln!(
            "ferry: warning: {} is a file on one side and a folder on the other: left alone",
            visible(c.as_str())
        );
    }
    if dry_run {
        print_plan(direction, &plan, &remote_map, &local_map);
        return worst.code();
    }
    let (tally, deleted) = match direction {
        Direction::Push => push(
            client,
            ctx,
            &folder,
            remote_exists,
            &plan,
            &local_paths,
            &mut worst,
        ),
        Direction::Pull => pull(client, ctx, &folder, local, &plan, &local_paths, &mut worst),
    };
    let verb = match direction {
        Direction::Push => "sent",
        Direction::Pull => "received",
    };
    let extra = format!(", {} unchanged, {deleted} deleted", plan.same.len());
    summary(verb, &tally, Some(extra));
    worst.code()
}

/// The local side of a mirror: the walk of `local` (none when `walk` is false: a pull into
/// a folder that does not exist yet) and, for each entry in order, the size and digest of a
/// file (`None` for a folder).
#[allow(clippy::type_complexity)]
fn local_side(
    local: &Path,
    base: Option<&TreePath>,
    walk: bool,
) -> Result<
    (
        LocalTree,
        Vec<Option<Result<(u64, ferry_wire::Digest), ClientError>>>,
    ),
    ClientError,
> {
    if !walk {
        return Ok((LocalTree::default(), Vec::new()));
    }
    let tree = walk_local(local, base)?;
    let digests = tree
        .entries
        .iter()
        .map(|e| match e.kind {
            LocalKind::Folder => None,
            LocalKind::File(_) => Some(hash_file(&e.local)),
        })
        .collect();
    Ok((tree, digests))
}

/// The folder on the server a local folder goes to: `remote` when given, else the local
/// folder's own name (in NFC); a name that cannot be one is a usage error (exit 2).
fn remote_or_own_name(remote: Option<Folder>, local: &Path, what: &str) -> Result<Folder, u8> {
    match remote {
        Some(f) => Ok(f),
        None => match ferry_sync::client::name_for_local(&absolute(local)) {
            Ok(n) => Ok(Folder::Path(TreePath::from(n))),
            Err(e) => {
                eprintln!("ferry: {what} {}: {e}", local.display());
                Err(exit::USAGE)
            }
        },
    }
}

/// The plan of a dry run, one step a line: `mkdir`, `put`/`get` (with the size), `delete`,
/// `rmdir`.
fn print_plan(
    direction: Direction,
    plan: &MirrorPlan,
    remote: &BTreeMap<TreePath, Side>,
    local: &BTreeMap<TreePath, Side>,
) {
    let (copy, source) = match direction {
        Direction::Push => ("put", local),
        Direction::Pull => ("get", remote),
    };
    let mut out = io::stdout().lock();
    for p in &plan.make {
        let _ = writeln!(out, "mkdir {}", visible(p.as_str()));
    }
    for p in &plan.copy {
        let size = match source.get(p) {
            Some(Side::File { size, .. }) => *size,
            _ => 0,
        };
        let _ = writeln!(out, "{copy} {} ({size} octets)", visible(p.as_str()));
    }
    for p in &plan.delete_files {
        let _ = writeln!(out, "delete {}", visible(p.as_str()));
    }
    for p in &plan.delete_folders {
        let _ = writeln!(out, "rmdir {}", visible(p.as_str()));
    }
    let _ = writeln!(
        out,
        "dry run: {} to copy, {} unchanged, {} to delete; nothing was changed",
        plan.copy.len(),
        plan.same.len(),
        plan.delete_files.len() + plan.delete_folders.len()
    );
    let _ = out.flush();
}

/// Carries out a push: folders, files (put replace), then deletions, each batch pipelined.
fn push(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    folder: &Folder,
    remote_exists: bool,
    plan: &MirrorPlan,
    local_paths: &BTreeMap<TreePath, PathBuf>,
    worst: &mut Worst,
) -> (Tally, u64) {
    let mut ops = Vec::new();
    if let (false, Some(p)) = (remote_exists, folder.path()) {
        ops.extend(prefixes(p).into_iter().map(TreeOp::Mkdir));
    }
    let mut files = Vec::new();
    let mut bad = Vec::new();
    for p in &plan.make {
        match under(folder, p) {
            Ok(r) => ops.push(TreeOp::Mkdir(r)),
            Err(e) => bad.push(e),
        }
    }
    for p in &plan.copy {
        match (under(folder, p), local_paths.get(p)) {
            (Ok(r), Some(l)) => files.push((l.clone(), r)),
            (Err(e), _) => bad.push(e),
            (Ok(_), None) => {}
        }
    }
    for e in bad {
        worst.add(ctx.fail("mirror", &e));
    }
    worst.add(run_ops(client, ctx, &ops, &|op, e| {
        exists(e) && matches!(op, TreeOp::Mkdir(_))
    }));
    let tally = put_files(client, ctx, &files, PutMode::Replace, worst);
    let mut deletions = Vec::new();
    for p in &plan.delete_files {
        if let Ok(r) = under(folder, p) {
            deletions.push(TreeOp::Delete(r));
        }
    }
    for p in &plan.delete_folders {
        if let Ok(r) = under(folder, p) {
            deletions.push(TreeOp::Rmdir(r));
        }
    }
    let mut deleted = 0;
    for (op, result) in deletions.iter().zip(client.tree_many(&deletions)) {
        match result {
            Ok(Outcome::TreeDone) => deleted += 1,
            Ok(_) => {}
            Err(e) => worst.add(ctx.fail(&describe(op), &e)),
        }
    }
    (tally, deleted)
}

/// Carries out a pull: local folders (no link followed), files (verified downloads), then
/// local deletions (files, then empty folders deepest first).
fn pull(
    client: &mut AnyClient,
    ctx: &Ctx<'_>,
    folder: &Folder,
    local: &Path,
    plan: &MirrorPlan,
    local_paths: &BTreeMap<TreePath, PathBuf>,
    worst: &mut Worst,
) -> (Tally, u64) {
    if let Err(e) = make_local_folder(local, None) {
        worst.add(ctx.fail("mirror", &e));
        return (Tally::default(), 0);
    }
    for p in &plan.make {
        if let Err(e) = make_local_folder(local, Some(p)) {
            worst.add(ctx.fail(&format!("mkdir {}", visible(p.as_str())), &e));
        }
    }
    let mut files = Vec::new();
    for p in &plan.copy {
        match (under(folder, p), local_file(local, p)) {
            (Ok(r), Ok(dest)) => files.push((r, dest)),
            (Err(e), _) | (_, Err(e)) => {
                worst.add(ctx.fail(&format!("get {}", visible(p.as_str())), &e));
            }
        }
    }
    let tally = get_files(client, ctx, &files, false, worst);
    let mut deleted = 0;
    for p in &plan.delete_files {
        if let Some(l) = local_paths.get(p) {
            match fs::remove_file(l) {
                Ok(()) => deleted += 1,
                Err(e) => worst.add(ctx.fail("mirror", &ClientError::local(l, e))),
            }
        }
    }
    for p in &plan.delete_folders {
        if let Some(l) = local_paths.get(p) {
            match fs::remove_dir(l) {
                Ok(()) => deleted += 1,
                Err(e) => worst.add(ctx.fail("mirror", &ClientError::local(l, e))),
            }
        }
    }
    (tally, deleted)
}

/// Runs `f` on a new session with the server, then closes it: the one-shot commands.
pub(crate) fn one_shot(
    how: &ClientArgs,
    addr: &ServerAddr,
    f: impl FnOnce(&mut AnyClient, &Ctx<'_>) -> u8,
) -> u8 {
    let mut client = match crate::commands::connect(how, addr) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let ctx = Ctx {
        addr,
        timeout: how.timeout,
    };
    // Said once, rather than once per request.
    let code = if ferry_wire::tree::offered(client.greeting()) {
        f(&mut client, &ctx)
    } else {
        ctx.fail("", &not_offered())
    };
    crate::commands::close(client);
    code
}
