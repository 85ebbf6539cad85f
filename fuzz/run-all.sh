#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run-all.sh [SECONDS_PER_TARGET]
# (default 60). CI runs it with a short budget. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# runs on the stable toolchain through RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
python3 seed-corpus.py >/dev/null
cargo fuzz build
status=0
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "== $target (${secs}s)"
    # The session targets keep one server (and its threads) for the whole process on
    # purpose: LeakSanitizer would report that state at exit.
    leaks=1
    case "$target" in server_session|client) leaks=0 ;; esac
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$secs" -dict=terminals.dict -rss_limit_mb=2048 -print_final_stats=1 \
        -detect_leaks="$leaks" \
        >"/tmp/ferry-fuzz-$target.log" 2>&1; then
        echo "FAILED: $target (log: /tmp/ferry-fuzz-$target.log; crash input under fuzz/artifacts/$target/)"
        tail -n 40 "/tmp/ferry-fuzz-$target.log"
        status=1
    else
        grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "/tmp/ferry-fuzz-$target.log" | tr '\n' ' '
        echo
    fi
done
exit $status
