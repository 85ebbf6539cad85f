#!/usr/bin/env bash
# bench/mirror.sh: `ferry mirror push` against rsync's daemon on the same tree (#17).
#
# A tree of FILES files of SIZE octets in FOLDERS folders, on tmpfs, is mirrored once to a
# `ferry serve` folder and to an rsync daemon module (not timed). Then, RUNS times: CHANGED
# files (1 % by default) are rewritten with new content of the same size, and each tool
# brings its copy up to date, timed as a whole command:
#
#   ferry mirror push ADDR SRC          (compares every file by size and xxh3-128 digest:
#                                         the server lists its tree with digests, the client
#                                         hashes its own, only differing files are sent)
#   rsync -a SRC/ rsync://…/dst/         (rsync's default quick check: size and mtime; the
#                                         files it finds changed go through its delta transfer)
#
# Both copies are then compared with the source (diff -r): a tool that skipped a change fails
# the run. Prints the median, min and max of each, and writes them as JSON to OUT.
#
#   bench/mirror.sh                     # 10,000 files of 4 KiB, 100 changed, 5 runs
#   FILES=1000 RUNS=3 bench/mirror.sh   # quick
#
# Needs rsync (installed with apt-get when missing and run as root) and about
# 3 x FILES x SIZE of free memory in /dev/shm. Leaves nothing running: every daemon is
# stopped on exit, and the work folder removed (KEEP_WORK=1 keeps it).
set -euo pipefail

FILES=${FILES:-10000}
FOLDERS=${FOLDERS:-100}
SIZE=${SIZE:-4096}
CHANGED=${CHANGED:-$((FILES / 100))}
RUNS=${RUNS:-5}
IMPL=${IMPL:-threads}
RSYNC_PORT=${RSYNC_PORT:-8731}
OUT=${OUT:-target/bench/mirror.json}
KEEP_WORK=${KEEP_WORK:-0}

die() { echo "mirror.sh: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
if ! command -v rsync >/dev/null; then
    [ "$(id -u)" = 0 ] || die "rsync is missing (apt-get install rsync, as root)"
    apt-get install -y -qq rsync >/dev/null
fi
if [ -z "${FERRY_BIN:-}" ]; then
    cargo build --release -q -p ferry
    FERRY_BIN=target/release/ferry
fi
[ -x "$FERRY_BIN" ] || die "no ferry binary at $FERRY_BIN"

WORK=$(mktemp -d /dev/shm/ferry-mirror.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
SRC=$WORK/src
mkdir -p "$SRC" "$WORK/ferry" "$WORK/rsync" "$WORK/etc" "$WORK/home"
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config

# The tree: FOLDERS folders d000…, FILES files spread over them, random content.
echo "making $FILES files of $SIZE octets in $FOLDERS folders under $SRC" >&2
python3 - "$SRC" "$FILES" "$FOLDERS" "$SIZE" <<'EOF'
import os, sys
src, files, folders, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for d in range(folders):
    os.makedirs(os.path.join(src, f"d{d:03}"), exist_ok=True)
for i in range(files):
    with open(os.path.join(src, f"d{i % folders:03}", f"file {i:05}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF

# The ferry server, on a port the kernel picks, and the rsync daemon.
"$FERRY_BIN" serve --impl "$IMPL" --root "$WORK/ferry" --listen 127.0.0.1:0 \
    >"$WORK/ferry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    ADDR=$(grep -o 'listening on [0-9.:]*' "$WORK/ferry.log" | head -1 | awk '{print $3}') || true
    [ -n "${ADDR:-}" ] && break
    sleep 0.1
done
[ -n "${ADDR:-}" ] || die "ferry serve did not start: $(cat "$WORK/ferry.log")"
cat >"$WORK/etc/rsyncd.conf" <<EOF
pid file = $WORK/etc/rsyncd.pid
use chroot = no
reverse lookup = no
max connections = 0
[dst]
    path = $WORK/rsync
    read only = no
EOF
[ "$(id -u)" = 0 ] && printf 'uid = root\ngid = root\n' >>"$WORK/etc/rsyncd.conf"
rsync --daemon --no-detach --config="$WORK/etc/rsyncd.conf" --address=127.0.0.1 \
    --port="$RSYNC_PORT" >"$WORK/rsyncd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$RSYNC_PORT") 2>/dev/null && break; sleep 0.1; done

FERRY_CMD=("$FERRY_BIN" mirror push "ferry://$ADDR" "$SRC" . --impl "$IMPL")
RSYNC_CMD=(rsync -a "$SRC/" "rsync://127.0.0.1:$RSYNC_PORT/dst/")

echo "first copy (not timed)" >&2
"${FERRY_CMD[@]}" >/dev/null
"${RSYNC_CMD[@]}"

# change CHANGED files, spread over the tree, with new content of the same size
change() {
    python3 - "$SRC" "$FILES" "$FOLDERS" "$SIZE" "$CHANGED" "$1" <<'EOF'
import os, sys
src, files, folders, size, changed, run = sys.argv[1], *map(int, sys.argv[2:])
step = max(1, files // max(1, changed))
for k in range(changed):
    i = (k * step + run) % files
    with open(os.path.join(src, f"d{i % folders:03}", f"file {i:05}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF
}

now() { date +%s.%N; }
FERRY_T=() RSYNC_T=()
for run in $(seq "$RUNS"); do
    change "$run"
    t0=$(now); "${FERRY_CMD[@]}" >/dev/null; t1=$(now)
    "${RSYNC_CMD[@]}"; t2=$(now)
    FERRY_T+=("$(echo "$t1 - $t0" | bc)")
    RSYNC_T+=("$(echo "$t2 - $t1" | bc)")
    diff -r --exclude=.ferry-staging "$SRC" "$WORK/ferry" >/dev/null || die "run $run: ferry's copy differs from the source"
    diff -r "$SRC" "$WORK/rsync" >/dev/null || die "run $run: rsync's copy differs from the source"
    echo "run $run: ferry ${FERRY_T[-1]} s, rsync ${RSYNC_T[-1]} s" >&2
done

stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f %.3f %.3f", m, a[1], a[NR]}'; }
read -r fm fmin fmax <<<"$(stats "${FERRY_T[@]}")"
read -r rm_ rmin rmax <<<"$(stats "${RSYNC_T[@]}")"
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<EOF
{"files": $FILES, "folders": $FOLDERS, "size": $SIZE, "changed": $CHANGED, "runs": $RUNS, "impl": "$IMPL",
 "ferry": {"median_s": $fm, "min_s": $fmin, "max_s": $fmax},
 "rsync": {"median_s": $rm_, "min_s": $rmin, "max_s": $rmax},
 "versions": {"ferry": "$("$FERRY_BIN" --version)", "rsync": "$(rsync --version | head -1)"}}
EOF
echo "| tool | median | min | max |"
echo "|---|--:|--:|--:|"
echo "| ferry mirror push ($IMPL, by digest) | $fm s | $fmin s | $fmax s |"
echo "| rsync -a to rsync daemon (quick check) | $rm_ s | $rmin s | $rmax s |"
echo "$FILES files in $FOLDERS folders, $SIZE octets each, $CHANGED changed per run, $RUNS runs; $OUT" >&2
