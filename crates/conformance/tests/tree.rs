//! The tree cases (`server/TREE-*`, spec section 17) against the reference servers (threads,
//! tokio, smol, async-std): each with a read-only server that offers `tree` (for
//! `server/TREE-13/1`) and a server that does not (for `server/TREE-2/1`) beside it; the
//! case with users (`server/TREE-13/2`) runs in tests/auth.rs. Without a server that offers
//! `tree`, every tree case is `unimplemented` with the reason.

use ferry_conformance::{Report, RunOptions, ServerTarget, run_server};
use ferry_test_support::{Impl, TestServer};

mod common;

fn tree_cases() -> RunOptions {
    let mut o = RunOptions::default();
    o.filter.include.push("server/TREE-*".into());
    // With users: tests/auth.rs.
    o.filter.exclude.push("server/TREE-13/2".into());
    o
}

fn run(target: &ServerTarget) -> Report {
    ferry_conformance::check_server(target, &tree_cases()).expect("a run of the tree cases starts");
    run_server(target, &tree_cases(), &mut |_| {})
}

fn every_tree_case_passes(imp: Impl) {
    let main = TestServer::with_impl_config(imp, |_| {});
    let ro = TestServer::with_impl_config(imp, |c| c.read_only = true);
    ro.write_file("present.txt", b"hello");
    std::fs::create_dir(ro.root.join("folder")).expect("a folder in the read-only server");
    std::fs::write(ro.root.join("folder/inside.txt"), b"inside").expect("a file in it");
    let plain = TestServer::with_impl_config(imp, |c| c.tree = false);
    let mut target = ServerTarget::new(main.addr.to_string());
    target.read_only = Some(ro.addr.to_string());
    target.extra.push(plain.addr.to_string());
    let r = run(&target);
    common::check(&r, &format!("{} server, tree cases", imp.name()), &[]);
    assert!(r.summary.total >= 13, "{}", r.summary_line());
    assert_eq!(r.summary.pass, r.summary.total, "{}", r.summary_line());
    // The cases removed what they made; the probe file stays.
    let left: Vec<_> = std::fs::read_dir(&main.root)
        .expect("the served folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.ends_with("-probe"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn every_tree_case_passes_on_the_threaded_server() {
    every_tree_case_passes(Impl::Threads);
}

#[test]
fn every_tree_case_passes_on_the_tokio_server() {
    every_tree_case_passes(Impl::Tokio);
}

#[test]
fn every_tree_case_passes_on_the_smol_server() {
    every_tree_case_passes(Impl::Smol);
}

#[test]
fn every_tree_case_passes_on_the_async_std_server() {
    every_tree_case_passes(Impl::AsyncStd);
}

/// A server without `tree` (and no other): every tree case but `TREE-2/1`, which passes, is
/// `unimplemented`, saying what it needs.
#[test]
fn tree_cases_without_a_tree_server_are_unimplemented() {
    let plain = TestServer::with_config(|c| c.tree = false);
    let r = run(&ServerTarget::new(plain.addr.to_string()));
    for c in &r.cases {
        if c.id == "server/TREE-2/1" {
            assert_eq!(c.verdict, ferry_conformance::Verdict::Pass, "{c:#?}");
        } else {
            assert_eq!(
                c.verdict,
                ferry_conformance::Verdict::Unimplemented,
                "{c:#?}"
            );
            assert!(
                c.note
                    .as_deref()
                    .is_some_and(|n| n.contains("tree") || n.contains("read-only")),
                "{c:#?}"
            );
        }
    }
    assert!(r.summary.total >= 13, "{}", r.summary_line());
}
