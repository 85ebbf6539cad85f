//! Every replayable example of spec/examples, played against the server over loopback.

use ferry_test_support::{examples_dir, replay_examples};

#[test]
fn replayable_examples_match_the_server() {
    let (ran, failures) = replay_examples(&examples_dir());
    for f in &failures {
        eprintln!("{f}\n");
    }
    assert!(ran >= 20, "only {ran} replayable transcripts found");
    assert!(
        failures.is_empty(),
        "{} of {ran} transcripts failed",
        failures.len()
    );
}

/// The replay harness itself must notice a wrong reply, a wrong payload and a missing close.
#[test]
fn the_replay_notices_differences() {
    use ferry_test_support::Transcript;
    use ferry_test_support::replay;

    let good = std::fs::read_to_string(examples_dir().join("02-get.txt")).expect("example");
    let t = Transcript::parse(&good).expect("parse");
    replay(&t).expect("the original replays");

    for (from, to) in [
        (
            "S: ok get 5 2023-11-15T14:30:05Z",
            "S: ok get 5 2023-11-15T14:30:06Z",
        ),
        ("S> hello", "S> hellO"),
        ("max-eager=1048576", "max-eager=1048575"),
        ("S: bye\nS.", "S: bye\nS: bye\nS."),
    ] {
        assert!(good.contains(from), "{from}");
        let bad = Transcript::parse(&good.replacen(from, to, 1)).expect("parse");
        assert!(replay(&bad).is_err(), "a replay with {to:?} must fail");
    }
}

/// The same for the `tree` extension: the fixtures' folders get their MTIMEs, listings and
/// error codes are compared, and the server offers `tree` only under `@server tree`.
#[test]
fn the_replay_notices_differences_in_tree_transcripts() {
    use ferry_test_support::Transcript;
    use ferry_test_support::replay;

    for (file, edits) in [
        (
            "37-tree.txt",
            &[
                (
                    "S: d - 2024-02-10T12:00:00Z - docs/old drafts",
                    "S: d - 2024-02-10T12:00:01Z - docs/old drafts",
                ),
                ("S: ok list 6", "S: ok list 5"),
                ("S: ok rename", "S: err 512 exists"),
                ("@server tree\n", ""),
            ][..],
        ),
        (
            "38-tree-errors.txt",
            &[
                ("S: err 517 not-empty", "S: err 518 wrong-kind"),
                ("S: err 503 unsupported", "S: ok enable zip"),
            ][..],
        ),
    ] {
        let good = std::fs::read_to_string(examples_dir().join(file)).expect("example");
        let t = Transcript::parse(&good).expect("parse");
        replay(&t).expect("the original replays");
        for (from, to) in edits {
            assert!(good.contains(from), "{from}");
            let bad = Transcript::parse(&good.replacen(from, to, 1)).expect("parse");
            assert!(replay(&bad).is_err(), "a replay with {to:?} must fail");
        }
    }
}
