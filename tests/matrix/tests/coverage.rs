//! The generators reach what the properties are meant to exercise: over a fixed number of
//! generated sessions (no server involved), the model must predict each interesting outcome
//! at least a few times. Guards against a strategy change that silently stops producing,
//! say, resumed gets or PUT-13 races. Prints the counts.

use std::collections::BTreeMap;
use std::io::Write as _;

use ferry_matrix_tests::model::{Exp, Model};
use ferry_matrix_tests::ops::{Session, malformed_session, session};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

fn outcomes(strategy: impl Strategy<Value = Session>, n: usize) -> BTreeMap<String, usize> {
    // A fixed seed: the counts are the same on every run.
    let mut runner = TestRunner::deterministic();
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let s = strategy.new_tree(&mut runner).expect("a session").current();
        let mut m = Model::new(&s);
        for op in &s.ops {
            for e in m.expect(op) {
                let k = match e {
                    Exp::Err(c) => format!("err {c}"),
                    Exp::Line(l) => l.split(' ').take(2).collect::<Vec<_>>().join(" "),
                    Exp::GetOk(..) => "ok get".into(),
                    Exp::Payload(_, off) if off > 0 => "payload from an offset".into(),
                    Exp::Payload(c, _) if c.len == 0 => "empty payload".into(),
                    Exp::Payload(c, _) if c.len > 1 << 20 => "multi-chunk payload".into(),
                    Exp::Payload(..) => "payload".into(),
                    Exp::Entry(..) => "dir entry".into(),
                    Exp::Greeting => "greeting".into(),
                    Exp::Eof => "server closes".into(),
                };
                *counts.entry(k).or_default() += 1;
            }
        }
    }
    counts
}

fn require(counts: &BTreeMap<String, usize>, keys: &[&str], at_least: usize) {
    for k in keys {
        let n = counts.get(*k).copied().unwrap_or(0);
        assert!(n >= at_least, "{k}: {n} in {counts:#?}");
    }
}

#[test]
fn generators_reach_every_outcome() {
    let model = outcomes(session(16, 1), 300);
    require(
        &model,
        &[
            "ok get",
            "payload",
            "empty payload",
            "multi-chunk payload",
            "payload from an offset",
            "ok put",
            "go",
            "ok dir",
            "dir entry",
            "ok version",
            "bye",
            "server closes",
            "err 433",
            "err 434",
            "err 500",
            "err 501",
            "err 502",
            "err 503",
            "err 510",
            "err 511",
            "err 512",
            "err 513",
            "err 515",
        ],
        3,
    );
    let malformed = outcomes(malformed_session(), 300);
    require(
        &malformed,
        &["err 500", "err 501", "err 502", "err 510", "ok dir", "bye"],
        10,
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "\npredicted outcomes in 300 model sessions: {model:?}\nin 300 malformed sessions: {malformed:?}"
    );
}
