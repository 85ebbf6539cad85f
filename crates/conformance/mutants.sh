#!/usr/bin/env bash
# The conformance runner's strength, measured by mutation (crates/conformance/MUTANTS.md).
#
# cargo-mutants (crates.io) mutates the reference implementation's code — the server session
# core every server drives (ferry-proto's server.rs) with ferry-sync's driver of it (server/),
# or the client session core (ferry-client-core's session/ and the local-file policy local.rs)
# with ferry-sync's driver of it (client/) — and for each
# mutant runs ONLY the conformance runner against it: the test
# `reference_server_passes_every_server_case` or `reference_client_library_passes_every_client_case`
# of crates/conformance/tests/reference.rs. A mutant is caught when the runner reports a
# failure (or the run times out); it survives when the runner certifies the mutated
# implementation.
#
# Usage: crates/conformance/mutants.sh server|client [OUT_DIR] [-- extra cargo-mutants args]
#   OUT_DIR defaults to target/mutants-<side>; cargo-mutants writes OUT_DIR/mutants.out/
#   (caught.txt, missed.txt, timeout.txt, unviable.txt, outcomes.json, a log per mutant).
#   Extra arguments go to cargo-mutants, e.g. `-- --re 'session.rs'` or `-- --shard 1/4`.
#   JOBS (default 2) sets its parallel build/test jobs.
#
# Time: about an hour per side on 2 cores. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

side=${1:-}
case $side in
server)
    # The protocol core every server drives, and ferry-sync's driver of it.
    packages=(-p ferry-proto -p ferry-sync)
    files=(-f 'crates/proto/src/server.rs' -f 'crates/ref-sync/src/server/*')
    test=reference_server_passes_every_server_case
    ;;
client)
    # The client session core, the local-file policy, and ferry-sync's driver of them.
    packages=(-p ferry-client-core -p ferry-sync)
    files=(-f 'crates/client-core/src/session/*' -f 'crates/client-core/src/local.rs'
        -f 'crates/ref-sync/src/client/*')
    test=reference_client_library_passes_every_client_case
    ;;
*)
    echo "usage: $0 server|client [OUT_DIR] [-- cargo-mutants args]" >&2
    exit 2
    ;;
esac
shift
out=target/mutants-$side
if [[ $# -gt 0 && $1 != -- ]]; then
    out=$1
    shift
fi
[[ ${1:-} == -- ]] && shift

version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$version"; then
    cargo install cargo-mutants --locked --version "$version"
fi

# The unmutated tree must pass, or every mutant would count as caught.
echo "== baseline: the runner against the unmutated reference ($test)"
cargo test -p ferry-conformance --test reference -- "$test" --exact

echo "== mutants of ${files[*]}, tested by the conformance runner only"
mkdir -p "$out"
status=0
cargo mutants "${packages[@]}" "${files[@]}" \
    --test-package ferry-conformance --cargo-arg=--test --cargo-arg=reference \
    --baseline skip --timeout 180 --build-timeout 900 -j "${JOBS:-2}" \
    -o "$out" "$@" -- -- "$test" --exact || status=$?
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: a measurement, not an error.
if [[ $status -ne 0 && $status -ne 2 && $status -ne 3 ]]; then
    exit "$status"
fi

m=$out/mutants.out
count() { [[ -f $m/$1 ]] && wc -l <"$m/$1" | tr -d ' ' || echo 0; }
caught=$(count caught.txt)
timeout=$(count timeout.txt)
missed=$(count missed.txt)
unviable=$(count unviable.txt)
viable=$((caught + timeout + missed))
echo
echo "== score ($side): $((caught + timeout)) of $viable viable mutants caught" \
    "($caught failed the runner, $timeout timed out), $missed missed, $unviable unviable"
if [[ $viable -gt 0 ]]; then
    echo "   raw score: $(((caught + timeout) * 1000 / viable / 10)).$(((caught + timeout) * 1000 / viable % 10)) %"
fi
echo "   survivors: $m/missed.txt (each must be explained in crates/conformance/MUTANTS.md)"
