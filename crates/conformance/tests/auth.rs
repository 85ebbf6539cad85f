//! The auth cases (`server/AUTH-*`, spec section 16) against the reference servers over TLS,
//! with the users `ferry_conformance::auth::setup` writes (what `ferry conform auth-setup`
//! writes, served as `ferry serve --users DIR/users.toml` serves them); and against servers
//! whose users' checks are deliberately broken, which the cases must catch.

use ferry_conformance::{Report, RunOptions, ServerTarget, Verdict, run_server};
use ferry_test_support::{Impl, TestServer};

mod common;
#[path = "common/users.rs"]
mod users;

use users::{Fault, World, world};

fn auth_cases() -> RunOptions {
    let mut o = RunOptions::default();
    o.filter.include.push("server/AUTH-*".into());
    // The tree case with users (section 17 with section 16's rights).
    o.filter.include.push("server/TREE-13/2".into());
    o
}

fn run(w: &World, opts: &RunOptions) -> Report {
    ferry_conformance::check_server(&w.target, opts).expect("a run of the auth cases starts");
    run_server(&w.target, opts, &mut |_| {})
}

fn every_auth_case_passes(imp: Impl) {
    let w = world(imp, None);
    let r = run(&w, &auth_cases());
    common::check(&r, &format!("{} server with users", imp.name()), &[]);
    assert!(r.summary.total >= 17, "{}", r.summary_line());
    assert_eq!(r.summary.pass, r.summary.total, "{}", r.summary_line());
    // The users' files went where their users are.
    assert!(w.server.root.read_dir().expect("alice's folder").count() > 1);
}

#[test]
fn every_auth_case_passes_on_the_threaded_server() {
    every_auth_case_passes(Impl::Threads);
}

#[test]
fn every_auth_case_passes_on_the_tokio_server() {
    every_auth_case_passes(Impl::Tokio);
}

#[test]
fn every_auth_case_passes_on_the_smol_server() {
    every_auth_case_passes(Impl::Smol);
}

#[test]
fn every_auth_case_passes_on_the_async_std_server() {
    every_auth_case_passes(Impl::AsyncStd);
}

/// Without `--auth`, or on plain ferry/1, every auth case is `unimplemented` with the reason.
#[test]
fn auth_cases_without_credentials_or_tls_are_unimplemented() {
    let w = world(Impl::Threads, None);
    let mut target = w.target.clone();
    target.auth = None;
    let r = run_server(&target, &auth_cases(), &mut |_| {});
    assert!(r.summary.total >= 16);
    assert_eq!(
        r.summary.unimplemented,
        r.summary.total,
        "{}",
        r.summary_line()
    );
    assert!(
        r.cases
            .iter()
            .all(|c| c.note.as_deref().is_some_and(|n| n.contains("--auth DIR"))),
        "{:#?}",
        r.cases
    );
    let plain = TestServer::start();
    let mut target = ServerTarget::new(plain.addr.to_string());
    target.auth = w.target.auth.clone();
    let r = run_server(&target, &auth_cases(), &mut |_| {});
    assert_eq!(
        r.summary.unimplemented,
        r.summary.total,
        "{}",
        r.summary_line()
    );
    assert!(
        r.cases[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("TLS only")),
        "{:?}",
        r.cases[0].note
    );
}

/// Each fault fails the cases named, under the requirement named.
#[test]
fn broken_servers_fail_the_auth_cases() {
    let expectations: &[(Fault, &[(&str, &str)])] = &[
        (
            Fault::AnySignature,
            &[
                ("server/AUTH-8/1", "AUTH-10"),
                ("server/AUTH-10/2", "AUTH-10"),
            ],
        ),
        (
            Fault::ZeroBinding,
            &[
                ("server/AUTH-10/1", "AUTH-10"),
                ("server/AUTH-8/1", "AUTH-10"),
            ],
        ),
        (Fault::OffersUnbound, &[("server/AUTH-1/1", "AUTH-11")]),
        (
            Fault::Anonymous,
            &[
                ("server/AUTH-17/1", "AUTH-17"),
                ("server/TREE-13/2", "TREE-13"),
            ],
        ),
        (
            Fault::AllRights,
            &[
                ("server/AUTH-19/1", "AUTH-19"),
                ("server/AUTH-19/2", "AUTH-19"),
                ("server/TREE-13/2", "TREE-13"),
            ],
        ),
        (Fault::UnknownAtOnce, &[("server/AUTH-14/1", "AUTH-14")]),
        (Fault::UnlikeUsers, &[("server/AUTH-14/1", "AUTH-14")]),
        (Fault::Unbound, &[("server/AUTH-11/2", "AUTH-11")]),
    ];
    for (fault, failing) in expectations {
        let w = world(Impl::Threads, Some(*fault));
        let r = run(&w, &auth_cases());
        for (id, requirement) in *failing {
            let c = r
                .cases
                .iter()
                .find(|c| c.id == *id)
                .unwrap_or_else(|| panic!("{id} ran"));
            assert_eq!(
                (c.verdict, c.violated.as_deref()),
                (Verdict::Fail, Some(*requirement)),
                "{fault:?}: {id}: {c:#?}"
            );
        }
    }
}
