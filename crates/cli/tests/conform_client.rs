//! The `ferry` binary as a ferry/1 client: every client case of the conformance runner, run
//! through the adapter command that crates/conformance/README.md shows (the same `sh -c`
//! script, with this build's `ferry` in place of the one on `PATH`).

use std::time::Duration;

use ferry_conformance::{ClientTarget, RunOptions, Verdict, run_client};

#[test]
fn ferry_cli_passes_every_client_case_through_the_readme_adapter() {
    let f = env!("CARGO_BIN_EXE_ferry");
    let script = format!(
        "case $FERRY_OP in \
         get) exec '{f}' get \"$FERRY_ADDR\" \"$FERRY_NAME\" -o \"$FERRY_DIR/$FERRY_NAME\";; \
         resume) exec '{f}' get --continue \"$FERRY_ADDR\" \"$FERRY_NAME\" -o \"$FERRY_DIR/$FERRY_NAME\";; \
         mget) exec '{f}' get \"$FERRY_ADDR\" \"$FERRY_NAME\" \"$FERRY_NAME2\" -o \"$FERRY_DIR/\";; \
         put) cd \"$FERRY_DIR\" && exec '{f}' put \"$FERRY_ADDR\" \"$FERRY_NAME\";; \
         mput) cd \"$FERRY_DIR\" && exec '{f}' put \"$FERRY_ADDR\" \"$FERRY_NAME\" \"$FERRY_NAME2\";; \
         rget) exec '{f}' get -r \"$FERRY_ADDR\" \"$FERRY_NAME\" -o \"$FERRY_DIR\";; \
         dir) exec '{f}' dir \"$FERRY_ADDR\";; esac"
    );
    let target = ClientTarget {
        argv: vec!["sh".into(), "-c".into(), script],
    };
    let opts = RunOptions {
        timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let r = run_client(&target, &opts, &mut |_| {});
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass && c.verdict != Verdict::Informational)
        .map(|c| (c.id.clone(), ferry_conformance::report::detail_lines(c)))
        .collect();
    assert!(
        bad.is_empty(),
        "the ferry CLI: cases that did not pass:\n{bad:#?}"
    );
    assert!(r.summary.total >= 100, "{}", r.summary.total);
    println!("ferry CLI: {}", r.summary_line());
}
