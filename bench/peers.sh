#!/usr/bin/env bash
# bench/peers.sh: ferry next to the file-transfer tools people use today, on this machine.
#
# Peers (servers on 127.0.0.1, clients are whole commands, see bench/README.md):
#   vsftpd      vsftpd (anonymous, upload/ writable) + lftp        FTP, passive mode
#   vsftpd-tls  the same with ssl_enable            + lftp (ssl)      FTPS (AUTH TLS), data protected
#   nginx       nginx (sendfile, WebDAV PUT)        + curl            HTTP/1.1 keep-alive
#   nginx-tls   the same on an ssl listener         + curl --cacert   HTTPS (HTTP/1.1, TLS 1.3)
#   rsync       rsync --daemon                      + rsync           rsync protocol, --whole-file
#   sftp        sshd (internal-sftp)                + sftp -b batch   SSH, aes128-gcm, curve25519
#   ferry       ferry serve --impl IMPL             + ferry get/put   ferry/1, pipelined
#   ferry-tls   ferry serve --tls-self-signed       + ferry get/put   ferry/1 over TLS 1.3,
#               ferrys://ADDR --fingerprint FP (n/a while the client lacks --fingerprint)
# The TLS peers share one ECDSA P-256 certificate for 127.0.0.1 made with openssl in the work
# folder (ferry makes its own self-signed P-256 key); every client verifies the server.
#
# Workloads, with every server root and client destination on tmpfs (/dev/shm):
#   large   one file of LARGE_MIB MiB of random bytes: get and put, 1 connection
#   small   SMALL_COUNT files of 4 KiB of random bytes: get and put, on 1 connection and on
#           CONNS connections (the list split in CONNS parts, one client command per part,
#           all started at once)
#
# Options (environment variables):
#   LARGE_MIB=1024      size of the large file in MiB (2^20 bytes)
#   SMALL_COUNT=10000   number of small files (4096 bytes each)
#   CONNS=64            connections (parallel client commands) for the small-file cases
#   RUNS=3              measured runs per case, after 1 warm-up run
#   OUT=target/bench/peers   where results go (relative to the repository root)
#   FERRY_BIN=          a ferry binary to use; unset: `cargo build --release -p ferry`
#   TOOLS="vsftpd vsftpd-tls nginx nginx-tls rsync sftp ferry ferry-tls"
#                       which peers to run (any subset)
#   IMPLS="threads tokio async-std smol"    which ferry implementations to run
#   FTP_PORT=2121 FTPS_PORT=2990 PASV_MIN=20000 PASV_MAX=20999 HTTP_PORT=8080 HTTPS_PORT=8443
#   RSYNC_PORT=8730 SSH_PORT=2222
#                       ports on 127.0.0.1 (ferry servers use free ports picked by the kernel)
#   KEEP_WORK=0         1 keeps the tmpfs work folder (for debugging; it can be large)
#   TIMER=hyperfine     `loop` times with a `date +%s.%N` loop instead (same warm-up, median)
#
# Output in $OUT: peers.json (one record per tool/workload/direction/connections), peers.md
# (Markdown table, also printed at the end), raw/*.json (hyperfine exports), logs/ (client and
# server logs), cases/ (the exact client commands). MB = 10^6 bytes.
#
# Needs root: it installs missing Debian packages with apt-get, starts vsftpd (chroot), sshd
# (root login with a generated key) and nginx. No systemd needed: every daemon runs from a
# config generated into the work folder and is stopped on exit.
#
# Quick run:  LARGE_MIB=256 SMALL_COUNT=1000 bench/peers.sh

set -euo pipefail
export LC_ALL=C
umask 022

# ---------------------------------------------------------------------------------------------
# Settings

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LARGE_MIB=${LARGE_MIB:-1024}
SMALL_COUNT=${SMALL_COUNT:-10000}
SMALL_SIZE=4096
CONNS=${CONNS:-64}
RUNS=${RUNS:-3}
OUT=${OUT:-target/bench/peers}
FTP_PORT=${FTP_PORT:-2121}
FTPS_PORT=${FTPS_PORT:-2990}
PASV_MIN=${PASV_MIN:-20000}
PASV_MAX=${PASV_MAX:-20999}
HTTP_PORT=${HTTP_PORT:-8080}
HTTPS_PORT=${HTTPS_PORT:-8443}
RSYNC_PORT=${RSYNC_PORT:-8730}
SSH_PORT=${SSH_PORT:-2222}
KEEP_WORK=${KEEP_WORK:-0}
TIMER=${TIMER:-hyperfine}

ALL_TOOLS=(vsftpd vsftpd-tls nginx nginx-tls rsync sftp ferry ferry-tls)
ALL_IMPLS=(threads tokio async-std smol)
read -r -a SEL_TOOLS <<<"${TOOLS:-${ALL_TOOLS[*]}}"
read -r -a SEL_IMPLS <<<"${IMPLS:-${ALL_IMPLS[*]}}"

die() {
    printf 'peers.sh: error: %s\n' "$*" >&2
    exit 1
}
log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for v in LARGE_MIB SMALL_COUNT CONNS RUNS FTP_PORT FTPS_PORT PASV_MIN PASV_MAX HTTP_PORT HTTPS_PORT RSYNC_PORT SSH_PORT; do
    is_uint "${!v}" || die "$v must be a positive integer (got '${!v}')"
done
((PASV_MIN <= PASV_MAX)) || die "PASV_MIN must not exceed PASV_MAX"
[[ $TIMER == hyperfine || $TIMER == loop ]] || die "TIMER must be hyperfine or loop"
# sshd is configured for 256 unauthenticated connections at once, ferry serve's default limit
# is 256 sessions.
((CONNS <= 256)) || die "CONNS must be at most 256"
in_list() {
    local x=$1
    shift
    local y
    for y in "$@"; do [[ $x == "$y" ]] && return 0; done
    return 1
}
((${#SEL_TOOLS[@]} > 0)) || die "TOOLS is empty"
for t in "${SEL_TOOLS[@]}"; do
    in_list "$t" "${ALL_TOOLS[@]}" || die "unknown tool '$t' in TOOLS (known: ${ALL_TOOLS[*]})"
done
for i in "${SEL_IMPLS[@]}"; do
    in_list "$i" "${ALL_IMPLS[@]}" || die "unknown ferry implementation '$i' in IMPLS (known: ${ALL_IMPLS[*]})"
done
want() { in_list "$1" "${SEL_TOOLS[@]}"; }
# want_any TOOL...: whether any of them is selected.
want_any() {
    local t
    for t in "$@"; do want "$t" && return 0; done
    return 1
}

[[ $EUID -eq 0 ]] || die "run as root (sudo bench/peers.sh): it installs packages and starts vsftpd, sshd and nginx"

cd "$REPO"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---------------------------------------------------------------------------------------------
# Packages (Debian). policy-rc.d keeps the packages' maintainer scripts from starting the
# system-wide daemons on their default ports.

ensure_packages() {
    local -a need=()
    [[ $TIMER == loop ]] || command -v hyperfine >/dev/null || need+=(hyperfine)
    command -v jq >/dev/null || need+=(jq)
    command -v cmp >/dev/null || need+=(diffutils)
    if want_any vsftpd vsftpd-tls; then
        [[ -x /usr/sbin/vsftpd ]] || need+=(vsftpd)
        command -v lftp >/dev/null || need+=(lftp)
    fi
    if want_any nginx nginx-tls; then command -v curl >/dev/null || need+=(curl); fi
    if want_any nginx nginx-tls; then [[ -x /usr/sbin/nginx ]] || need+=(nginx); fi
    if want_any vsftpd-tls nginx-tls; then command -v openssl >/dev/null || need+=(openssl); fi
    if want rsync; then command -v rsync >/dev/null || need+=(rsync); fi
    if want sftp; then
        [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
        { command -v sftp && command -v ssh-keygen; } >/dev/null || need+=(openssh-client)
    fi
    ((${#need[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing packages (${need[*]}) and no apt-get to install them"
    log "installing: ${need[*]}"
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    } >&2 || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install ${need[*]} failed"
}
ensure_packages

# ---------------------------------------------------------------------------------------------
# ferry binary

if want_any ferry ferry-tls; then
    if [[ -n ${FERRY_BIN:-} ]]; then
        [[ -x $FERRY_BIN ]] || die "FERRY_BIN=$FERRY_BIN is not an executable file"
        FERRY_BIN=$(cd "$(dirname "$FERRY_BIN")" && pwd)/$(basename "$FERRY_BIN")
    else
        command -v cargo >/dev/null || die "cargo not found: install Rust or set FERRY_BIN"
        log "building ferry (cargo build --release -p ferry)"
        cargo build --release -p ferry >&2 || die "cargo build --release -p ferry failed"
        FERRY_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/ferry
        [[ $FERRY_BIN == /* ]] || FERRY_BIN=$REPO/$FERRY_BIN
        [[ -x $FERRY_BIN ]] || die "no binary at $FERRY_BIN after the build"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Work folder on tmpfs, daemons, cleanup

[[ -d /dev/shm && $(stat -f -c %T /dev/shm) == tmpfs ]] || die "/dev/shm is not a tmpfs"
need_kib=$(((LARGE_MIB * 1024) * 3 + SMALL_COUNT * SMALL_SIZE * 3 / 1024 + 65536))
avail_kib=$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')
((avail_kib > need_kib)) || die "/dev/shm has ${avail_kib} KiB free, this run needs about ${need_kib} KiB"

WORK=$(mktemp -d /dev/shm/ferry-peers-XXXX)
chmod 755 "$WORK"
declare -A DAEMON_PID=()
LOGS=$OUT/logs

# Stops one daemon: its process group (it was started with setsid), then any children that left
# the group (sshd's sessions call setsid), then waits for it.
stop_daemon() {
    local name=$1 pid=${DAEMON_PID[$1]:-}
    [[ -n $pid ]] || return 0
    unset "DAEMON_PID[$name]"
    local -a kids=()
    mapfile -t kids < <(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' || true)
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local k
    for k in "${kids[@]}"; do
        if [[ -n $k ]]; then kill -TERM "$k" 2>/dev/null || true; fi
    done
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    for k in "${kids[@]}"; do
        if [[ -n $k ]]; then kill -KILL "$k" 2>/dev/null || true; fi
    done
    wait "$pid" 2>/dev/null || true
}

# kill_tree PID: SIGTERM to PID and all its descendants (collected first, then signalled).
kill_tree() {
    local -a todo=("$1") all=()
    local p c
    while ((${#todo[@]} > 0)); do
        p=${todo[0]}
        todo=("${todo[@]:1}")
        all+=("$p")
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do todo+=("$c"); done
    done
    kill -TERM "${all[@]}" 2>/dev/null || true
}

TIMER_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $TIMER_PID ]]; then
        kill_tree "$TIMER_PID"
        wait "$TIMER_PID" 2>/dev/null || true
    fi
    local name
    for name in "${!DAEMON_PID[@]}"; do stop_daemon "$name"; done
    if [[ $KEEP_WORK == 1 ]]; then
        log "kept the work folder $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_daemon NAME CMD...: runs CMD in its own session (so its whole process group can be
# stopped), stdout and stderr to $LOGS/NAME.log.
start_daemon() {
    local name=$1
    shift
    : >"$LOGS/$name.log" # exists before the child opens it: callers poll it at once
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    DAEMON_PID[$name]=$!
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_free_or_die() {
    ! port_open "$1" || die "port 127.0.0.1:$1 is already in use (set $2 to another port)"
}

# wait_listen NAME PORT: polls until 127.0.0.1:PORT accepts connections (10 s), and fails
# clearly if the daemon exits first.
wait_listen() {
    local name=$1 port=$2 pid=${DAEMON_PID[$1]} i
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOGS/$name.log" >&2 || true
            die "$name exited before listening on 127.0.0.1:$port (log: $LOGS/$name.log)"
        fi
        port_open "$port" && return 0
        sleep 0.1
    done
    die "$name does not listen on 127.0.0.1:$port after 10 s (log: $LOGS/$name.log)"
}

# ---------------------------------------------------------------------------------------------
# Data: the same bytes for every tool. src/ is the client's side for puts; pub/ (hard links
# to the same files) is what servers offer for gets.

SRC=$WORK/src
PUB=$WORK/pub
CASES=$WORK/cases
DL=$WORK/dl
mkdir -p "$SRC" "$PUB" "$CASES" "$WORK/up" "$WORK/etc" "$OUT/raw" "$LOGS"
rm -f "$OUT"/raw/*.json "$OUT"/logs/*.log "$OUT/peers.json" "$OUT/peers.md" "$OUT/records.jsonl"
RECORDS=$OUT/records.jsonl
: >"$RECORDS"

LARGE_BYTES=$((LARGE_MIB * 1048576))
SMALL_BYTES=$((SMALL_COUNT * SMALL_SIZE))
log "work folder $WORK; generating ${LARGE_MIB} MiB + ${SMALL_COUNT} x ${SMALL_SIZE} B of random data"
head -c "$LARGE_BYTES" /dev/urandom >"$SRC/large.bin"
width=${#SMALL_COUNT}
((width >= 5)) || width=5
head -c "$SMALL_BYTES" /dev/urandom | (cd "$SRC" && split -d -a "$width" -b "$SMALL_SIZE" - s)
echo large.bin >"$CASES/large.list"
(cd "$SRC" && find . -maxdepth 1 -type f -name 's[0-9]*' -printf '%f\n' | sort) >"$CASES/small.list"
[[ $(wc -l <"$CASES/small.list") -eq $SMALL_COUNT ]] || die "expected $SMALL_COUNT small files"
SMALL_SHA=$(cd "$SRC" && xargs -a "$CASES/small.list" cat | sha256sum | cut -d' ' -f1)
cp -al "$SRC/." "$PUB/"

# The CONNS parts of the small-file list (fewer when there are fewer files than CONNS).
mkdir -p "$CASES/parts"
(cd "$CASES/parts" && split -d -a 4 -n "l/$CONNS" "$CASES/small.list" part.)
find "$CASES/parts" -type f -empty -delete
mapfile -t PARTS < <(find "$CASES/parts" -type f -name 'part.*' | sort)
log "small files split into ${#PARTS[@]} parts"

# ---------------------------------------------------------------------------------------------
# Measurement

HAVE_HYPERFINE=0
[[ $TIMER == hyperfine ]] && command -v hyperfine >/dev/null && HAVE_HYPERFINE=1

# time_loop PREP CMD RAW: the fallback timer: 1 warm-up, RUNS runs, each after PREP; writes a
# hyperfine-like JSON to RAW.
time_loop() {
    local prep=$1 cmd=$2 raw=$3 i t0 t1
    local -a times=()
    for ((i = 0; i <= RUNS; i++)); do
        bash "$prep" || return 1
        t0=$(date +%s.%N)
        bash "$cmd" >/dev/null || return 1
        t1=$(date +%s.%N)
        ((i == 0)) || times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.9f", b - a }')")
    done
    printf '%s\n' "${times[@]}" | jq -s --arg cmd "bash $cmd" '
        (sort) as $s | ($s | length) as $n |
        {results: [{command: $cmd, times: ., min: $s[0], max: $s[-1],
          median: (if $n % 2 == 1 then $s[($n - 1) / 2] else ($s[$n / 2 - 1] + $s[$n / 2]) / 2 end),
          mean: (add / $n), exit_codes: [.[] | 0]}]}' >"$raw"
}

# record TOOL IMPL CLIENT WORKLOAD DIRECTION CONNS FILES BYTES MEDIAN MIN MAX OK NOTE
# (MEDIAN/MIN/MAX may be "" = null; OK is true, false or null for n/a)
record() {
    jq -cn --arg tool "$1" --arg impl "$2" --arg client "$3" --arg workload "$4" \
        --arg direction "$5" --argjson connections "$6" --argjson files "$7" --argjson bytes "$8" \
        --arg median "$9" --arg min "${10}" --arg max "${11}" --argjson ok "${12}" --arg note "${13}" '
        def num: if . == "" then null else tonumber end;
        ($median | num) as $m |
        {tool: $tool, impl: (if $impl == "" then null else $impl end), client: $client,
         workload: $workload, direction: $direction, connections: $connections,
         files: $files, bytes: $bytes, median_s: $m, min_s: ($min | num), max_s: ($max | num),
         mb_per_s: (if $m then $bytes / 1e6 / $m else null end),
         files_per_s: (if $m then $files / $m else null end),
         ok: $ok, note: $note}' >>"$RECORDS"
}

# visible_files DIR: number of entries in DIR whose name does not start with a dot.
visible_files() { find "$1" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l; }

# verify WORKLOAD DIR: prints nothing and succeeds when DIR holds exactly the expected files.
verify() {
    local workload=$1 dir=$2 n
    n=$(visible_files "$dir")
    if [[ $workload == large ]]; then
        [[ $n -eq 1 ]] || {
            echo "expected 1 file, found $n"
            return 1
        }
        cmp -s "$SRC/large.bin" "$dir/large.bin" || {
            echo "large.bin differs from the source (size $(stat -c %s "$dir/large.bin" 2>/dev/null || echo missing))"
            return 1
        }
    else
        [[ $n -eq $SMALL_COUNT ]] || {
            echo "expected $SMALL_COUNT files, found $n"
            return 1
        }
        local sha
        sha=$(cd "$dir" && xargs -a "$CASES/small.list" cat 2>/dev/null | sha256sum | cut -d' ' -f1) || true
        [[ $sha == "$SMALL_SHA" ]] || {
            echo "file contents differ from the source (sha256 of the concatenation)"
            return 1
        }
    fi
}

# clear_dir DIR: removes DIR's visible entries (keeps e.g. ferry's .ferry-staging/).
clear_cmd() { printf 'find %q -mindepth 1 -maxdepth 1 ! -name %q -exec rm -rf -- {} +\n' "$1" '.*'; }

# Per-tool command builders. CMD_<dir>_<tool> LIST OUTPREFIX prints one shell command line
# that moves the files named in LIST (one name a line) over one connection, writing any
# helper file it needs to OUTPREFIX.*. Gets write into $DL; puts read from $SRC (the case
# script's working folder) and land in the server folder UPDIR[<tool>].

curl_get_cfg() { awk -v b="$1" '{ printf "url = \"%s%s\"\n", b, $0 }' "$2"; }
curl_put_cfg() { awk -v u="$1" '{ printf "upload-file = \"%s\"\nurl = \"%s\"\n", $0, u }' "$2"; }

# lftp, not curl, for FTP: curl 7.88 with many ftp:// URLs in one invocation stalls for 1 s
# before some data connections (a race in its multi loop), which made FTP results random.
# lftp_script VERB SETUP LIST [tls]: with `tls`, FTPS: AUTH TLS before the login, every data
# connection protected too (PROT P), the server's certificate verified against the work
# folder's CA file (a fallback to plain FTP is refused).
lftp_script() {
    printf 'set cmd:fail-exit yes\nset net:max-retries 2\nset net:timeout 60\n'
    if [[ ${4:-} == tls ]]; then
        printf 'set ftp:ssl-allow yes\nset ftp:ssl-force yes\nset ftp:ssl-protect-data yes\n'
        printf 'set ftp:ssl-protect-list yes\nset ssl:verify-certificate yes\nset ssl:check-hostname yes\n'
        printf 'set ssl:ca-file %s\n' "$TLS_CERT"
        printf 'open -p %s 127.0.0.1\n' "$FTPS_PORT"
    else
        printf 'open -p %s 127.0.0.1\n' "$FTP_PORT"
    fi
    printf '%s\n' "$2"
    # 100 names per command keeps lines short; the transfers run one after another anyway.
    xargs -n 100 echo "$1" <"$3"
}
cmd_get_vsftpd() {
    lftp_script get "$(printf 'cd pub\nlcd %s' "$DL")" "$1" ${3:+"$3"} >"$2.lftp"
    printf 'lftp --norc -f %q\n' "$2.lftp"
}
cmd_put_vsftpd() {
    lftp_script put "$(printf 'cd upload\nlcd %s' "$SRC")" "$1" ${3:+"$3"} >"$2.lftp"
    printf 'lftp --norc -f %q\n' "$2.lftp"
}
cmd_get_vsftpd_tls() { cmd_get_vsftpd "$1" "$2" tls; }
cmd_put_vsftpd_tls() { cmd_put_vsftpd "$1" "$2" tls; }
cmd_get_nginx() {
    curl_get_cfg "http://127.0.0.1:$HTTP_PORT/pub/" "$1" >"$2.curl"
    printf 'curl -sSf --remote-name-all --output-dir %q -K %q\n' "$DL" "$2.curl"
}
cmd_put_nginx() {
    curl_put_cfg "http://127.0.0.1:$HTTP_PORT/up/" "$1" >"$2.curl"
    printf 'curl -sSf -K %q\n' "$2.curl"
}
# HTTPS: the same requests on one TLS connection, the certificate verified against the work
# folder's CA file.
cmd_get_nginx_tls() {
    curl_get_cfg "https://127.0.0.1:$HTTPS_PORT/pub/" "$1" >"$2.curl"
    printf 'curl -sSf --cacert %q --remote-name-all --output-dir %q -K %q\n' "$TLS_CERT" "$DL" "$2.curl"
}
cmd_put_nginx_tls() {
    curl_put_cfg "https://127.0.0.1:$HTTPS_PORT/up/" "$1" >"$2.curl"
    printf 'curl -sSf --cacert %q -K %q\n' "$TLS_CERT" "$2.curl"
}
cmd_get_rsync() {
    printf 'rsync --whole-file --files-from=%q rsync://127.0.0.1:%s/pub/ %q/\n' "$1" "$RSYNC_PORT" "$DL"
}
cmd_put_rsync() {
    printf 'rsync --whole-file --files-from=%q ./ rsync://127.0.0.1:%s/up/\n' "$1" "$RSYNC_PORT"
}
cmd_get_sftp() {
    {
        printf 'cd %s\nlcd %s\n' "$PUB" "$DL"
        sed 's/^/get /' "$1"
    } >"$2.sftp"
    printf 'sftp -F %q -b %q ferry-peers\n' "$WORK/etc/ssh/config" "$2.sftp"
}
cmd_put_sftp() {
    {
        printf 'cd %s\nlcd %s\n' "${UPDIR[sftp]}" "$SRC"
        sed 's/^/put /' "$1"
    } >"$2.sftp"
    printf 'sftp -F %q -b %q ferry-peers\n' "$WORK/etc/ssh/config" "$2.sftp"
}
# ferry: the names go on the command line (read from LIST by the case script's bash).
# shellcheck disable=SC2016 # ${n[@]} is for the case script
cmd_get_ferry() {
    printf 'mapfile -t n <%q; %q get --impl %q %q "${n[@]}" -o %q\n' \
        "$1" "$FERRY_BIN" "$FERRY_IMPL" "$FERRY_GET_ADDR" "$DL"
}
# shellcheck disable=SC2016
cmd_put_ferry() {
    printf 'mapfile -t n <%q; %q put --impl %q %q "${n[@]}"\n' \
        "$1" "$FERRY_BIN" "$FERRY_IMPL" "$FERRY_PUT_ADDR"
}
# ferry over TLS: `ferrys://` addresses, the key pinned by the fingerprint the server printed.
# shellcheck disable=SC2016
cmd_get_ferry_tls() {
    printf 'mapfile -t n <%q; %q get --impl %q --fingerprint %q %q "${n[@]}" -o %q\n' \
        "$1" "$FERRY_BIN" "$FERRY_IMPL" "$FERRY_FP" "ferrys://$FERRY_GET_ADDR" "$DL"
}
# shellcheck disable=SC2016
cmd_put_ferry_tls() {
    printf 'mapfile -t n <%q; %q put --impl %q --fingerprint %q %q "${n[@]}"\n' \
        "$1" "$FERRY_BIN" "$FERRY_IMPL" "$FERRY_FP" "ferrys://$FERRY_PUT_ADDR"
}

declare -A UPDIR=()
declare -A CLIENT=([vsftpd]=lftp [vsftpd-tls]=lftp [nginx]=curl [nginx-tls]=curl [rsync]=rsync
    [sftp]=sftp [ferry]=ferry [ferry-tls]=ferry)

# run_case TOOL WORKLOAD DIRECTION CONNS: builds the case script (one client command per
# part, all in parallel), times it, verifies the result and appends a record.
run_case() {
    local tool=$1 workload=$2 direction=$3 conns=$4
    local impl=${FERRY_IMPL:-} key files bytes
    [[ $tool == ferry || $tool == ferry-tls ]] || impl=""
    key=$tool${impl:+-$impl}-$workload-$direction-c$conns
    if [[ $workload == large ]]; then files=1 bytes=$LARGE_BYTES; else files=$SMALL_COUNT bytes=$SMALL_BYTES; fi
    local -a lists
    if [[ $workload == large ]]; then
        lists=("$CASES/large.list")
    elif ((conns == 1)); then
        lists=("$CASES/small.list")
    else
        lists=("${PARTS[@]}")
    fi
    local note=""
    ((conns > 1 && ${#lists[@]} < conns)) && note="only ${#lists[@]} parts (fewer files than connections)"

    local script=$CASES/$key.sh prep=$CASES/$key.prep.sh raw=$OUT/raw/$key.json
    local caselog=$LOGS/$key.log target cwd
    if [[ $direction == get ]]; then
        target=$DL cwd=$DL
        printf 'rm -rf %q && mkdir -p %q\n' "$DL" "$DL" >"$prep"
    else
        target=${UPDIR[$tool]} cwd=$SRC
        clear_cmd "$target" >"$prep"
    fi
    {
        printf '#!/bin/bash\nexec 2>>%q\ncd %q\n' "$caselog" "$cwd"
        if ((${#lists[@]} == 1)); then
            "cmd_${direction}_${tool//-/_}" "${lists[0]}" "$CASES/$key.0"
        else
            printf 'pids=()\n'
            local i
            for i in "${!lists[@]}"; do
                printf '( %s) & pids+=($!)\n' "$("cmd_${direction}_${tool//-/_}" "${lists[$i]}" "$CASES/$key.$i")"
            done
            # shellcheck disable=SC2016
            printf 'rc=0\nfor p in "${pids[@]}"; do wait "$p" || rc=$?; done\nexit "$rc"\n'
        fi
    } >"$script"

    log "$key: $files file(s), $bytes bytes, $conns connection(s)"
    local ok=true median="" min="" max="" why=""
    # The timer runs in the background so that a signal interrupts `wait` at once (the trap then
    # stops the timer and its clients).
    local timed=0
    if ((HAVE_HYPERFINE)); then
        hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "bash $prep" \
            --export-json "$raw" --command-name "$key" "bash $script" >>"$caselog" 2>&1 </dev/null &
    else
        time_loop "$prep" "$script" "$raw" >>"$caselog" 2>&1 </dev/null &
    fi
    TIMER_PID=$!
    wait "$TIMER_PID" && timed=1
    TIMER_PID=""
    if ((timed)); then
        median=$(jq -r '.results[0].median' "$raw")
        min=$(jq -r '.results[0].min' "$raw")
        max=$(jq -r '.results[0].max' "$raw")
        if ! why=$(verify "$workload" "$target"); then
            ok=false
            note="wrong result: $why${note:+; $note}"
        fi
    else
        ok=false
        local code
        code=$(grep -o 'non-zero exit code: [0-9]*' "$caselog" | tail -n 1 | grep -o '[0-9]*$' || true)
        why=$(grep -Ev '^\s*$|^Benchmark |non-zero exit code|--ignore-failure|^\s*Time |^\s*Range ' "$caselog" |
            tail -n 2 | tr '\n' ' ' | cut -c1-240)
        note="command failed${code:+ (exit $code)}: $why${note:+; $note}"
    fi
    record "$tool" "$impl" "${CLIENT[$tool]}" "$workload" "$direction" "$conns" "$files" "$bytes" \
        "$median" "$min" "$max" "$ok" "$note"
    if [[ $ok == true ]]; then
        log "$key: median ${median} s (min ${min}, max ${max}), verified"
    else
        log "$key: FAILED: $note (log: $caselog)"
    fi
    # Free the memory and leave the server folder empty.
    rm -rf "$DL"
    [[ $direction == put ]] && bash "$prep"
    return 0
}

# na_cases TOOL IMPL REASON: records every case of TOOL as not applicable.
na_cases() {
    local tool=$1 impl=$2 reason=$3 w d c
    for w in large small; do
        for d in get put; do
            for c in 1 "$CONNS"; do
                [[ $w == large && $c != 1 ]] && continue
                local files=$SMALL_COUNT bytes=$SMALL_BYTES
                [[ $w == large ]] && files=1 bytes=$LARGE_BYTES
                record "$tool" "$impl" "${CLIENT[$tool]}" "$w" "$d" "$c" "$files" "$bytes" "" "" "" null "n/a: $reason"
            done
        done
    done
}

run_all_cases() {
    local tool=$1
    run_case "$tool" large get 1
    run_case "$tool" large put 1
    run_case "$tool" small get 1
    run_case "$tool" small put 1
    if ((CONNS > 1)); then
        run_case "$tool" small get "$CONNS"
        run_case "$tool" small put "$CONNS"
    fi
}

# ---------------------------------------------------------------------------------------------
# Peers: setup and start

# The TLS peers' certificate: ECDSA P-256 (what ferry's --tls-self-signed makes too), for the
# IP address 127.0.0.1, self-signed; the clients trust exactly this file.
TLS_DIR=$WORK/etc/tls
TLS_CERT=$TLS_DIR/cert.pem
TLS_KEY=$TLS_DIR/key.pem
make_tls_cert() {
    [[ -s $TLS_CERT ]] && return 0
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$TLS_KEY" -out "$TLS_CERT" 2>"$LOGS/openssl.log" ||
        die "openssl could not make the TLS certificate (log: $LOGS/openssl.log)"
    chmod 600 "$TLS_KEY"
    chmod 644 "$TLS_CERT"
}

# setup_vsftpd [tls]: with `tls`, the vsftpd-tls peer: FTPS on FTPS_PORT (AUTH TLS required
# for the login and every data connection).
setup_vsftpd() {
    local name=vsftpd port=$FTP_PORT port_var=FTP_PORT
    [[ ${1:-} == tls ]] && name=vsftpd-tls port=$FTPS_PORT port_var=FTPS_PORT
    getent passwd ftp >/dev/null || die "vsftpd needs the 'ftp' user (created by the vsftpd package)"
    port_free_or_die "$port" "$port_var"
    local root=$WORK/$name conf=$WORK/etc/$name.conf
    mkdir -p "$root/pub" "$root/upload" "$WORK/etc/vsftpd-empty"
    cp -al "$SRC/." "$root/pub/"
    chown ftp: "$root/upload"
    UPDIR[$name]=$root/upload
    cat >"$conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$root
ftp_username=ftp
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_mkdir_write_enable=NO
anon_umask=022
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$PASV_MIN
pasv_max_port=$PASV_MAX
connect_from_port_20=NO
use_sendfile=YES
max_clients=0
max_per_ip=0
xferlog_enable=NO
dirmessage_enable=NO
syslog_enable=NO
vsftpd_log_file=$LOGS/$name-xfer.log
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
secure_chroot_dir=$WORK/etc/vsftpd-empty
EOF
    # FTPS: TLS (1.3 with OpenSSL 3) on the control and every data connection; vsftpd 3.0.3's
    # default cipher list (DES-CBC3-SHA) is replaced; require_ssl_reuse=NO because lftp does
    # not always resume the control connection's TLS session on data connections (522
    # errors otherwise): each data connection may then make a full handshake.
    if [[ ${1:-} == tls ]]; then
        cat >>"$conf" <<EOF
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
rsa_cert_file=$TLS_CERT
rsa_private_key_file=$TLS_KEY
ssl_ciphers=HIGH
ssl_sslv2=NO
ssl_sslv3=NO
require_ssl_reuse=NO
EOF
    fi
    start_daemon "$name" /usr/sbin/vsftpd "$conf"
    wait_listen "$name" "$port"
}
setup_vsftpd_tls() { setup_vsftpd tls; }

# setup_nginx [tls]: with `tls`, the nginx-tls peer: HTTPS on HTTPS_PORT (TLS 1.2 and 1.3;
# curl picks 1.3). sendfile stays on but does not apply to TLS connections (no kTLS here):
# nginx encrypts in user space.
setup_nginx() {
    local name=nginx port=$HTTP_PORT port_var=HTTP_PORT listen="" ssl=""
    if [[ ${1:-} == tls ]]; then
        name=nginx-tls port=$HTTPS_PORT port_var=HTTPS_PORT listen=" ssl"
        ssl="ssl_certificate $TLS_CERT; ssl_certificate_key $TLS_KEY; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m;"
    fi
    port_free_or_die "$port" "$port_var"
    local dir=$WORK/etc/$name conf=$WORK/etc/$name/nginx.conf
    mkdir -p "$dir/tmp" "$WORK/up/$name"
    chown www-data: "$WORK/up/$name"
    UPDIR[$name]=$WORK/up/$name
    cat >"$conf" <<EOF
daemon off;
user www-data;
worker_processes auto;
pid $dir/nginx.pid;
error_log $LOGS/$name-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port$listen;
        $ssl
        location /pub/ { alias $PUB/; }
        location /up/ {
            alias $WORK/up/$name/;
            dav_methods PUT;
            dav_access user:rw group:r all:r;
            client_max_body_size 0;
        }
    }
}
EOF
    /usr/sbin/nginx -t -q -e "$LOGS/$name-error.log" -p "$dir" -c "$conf" ||
        die "nginx rejects its configuration (see $LOGS/$name-error.log)"
    start_daemon "$name" /usr/sbin/nginx -e "$LOGS/$name-error.log" -p "$dir" -c "$conf"
    wait_listen "$name" "$port"
}
setup_nginx_tls() { setup_nginx tls; }

setup_rsync() {
    port_free_or_die "$RSYNC_PORT" RSYNC_PORT
    local conf=$WORK/etc/rsyncd.conf
    mkdir -p "$WORK/up/rsync"
    UPDIR[rsync]=$WORK/up/rsync
    cat >"$conf" <<EOF
pid file = $WORK/etc/rsyncd.pid
log file = $LOGS/rsyncd-xfer.log
use chroot = no
reverse lookup = no
max connections = 0
uid = root
gid = root
[pub]
    path = $PUB
    read only = yes
[up]
    path = $WORK/up/rsync
    read only = no
EOF
    start_daemon rsync rsync --daemon --no-detach --config="$conf" --address=127.0.0.1 --port="$RSYNC_PORT"
    wait_listen rsync "$RSYNC_PORT"
}

setup_sftp() {
    port_free_or_die "$SSH_PORT" SSH_PORT
    local d=$WORK/etc/ssh
    mkdir -p "$d" "$WORK/up/sftp"
    chmod 700 "$d"
    UPDIR[sftp]=$WORK/up/sftp
    ssh-keygen -q -t ed25519 -N '' -C ferry-peers-host -f "$d/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C ferry-peers-client -f "$d/id_ed25519"
    cp "$d/id_ed25519.pub" "$d/authorized_keys"
    printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$d/host_ed25519.pub")" >"$d/known_hosts"
    mkdir -p /run/sshd && chmod 755 /run/sshd # sshd's privilege separation folder
    cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
AddressFamily inet
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 256:30:512
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
    # OpenSSH >= 9.8 penalises sources whose connections do not authenticate; 64 parallel
    # clients from one address must not trip it.
    if /usr/sbin/sshd -t -f "$d/sshd_config" -o PerSourcePenalties=no 2>/dev/null; then
        echo 'PerSourcePenalties no' >>"$d/sshd_config"
    fi
    /usr/sbin/sshd -t -f "$d/sshd_config" || die "sshd rejects its configuration ($d/sshd_config)"
    cat >"$d/config" <<EOF
Host ferry-peers
    HostName 127.0.0.1
    Port $SSH_PORT
    User root
    IdentityFile $d/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $d/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking no
    CheckHostIP no
    UpdateHostKeys no
    BatchMode yes
    Ciphers aes128-gcm@openssh.com
    KexAlgorithms curve25519-sha256
    Compression no
    ControlMaster no
    ControlPath none
    ForwardAgent no
    ForwardX11 no
    LogLevel ERROR
EOF
    start_daemon sshd /usr/sbin/sshd -D -e -f "$d/sshd_config"
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "${DAEMON_PID[sshd]}" 2>/dev/null || {
            tail -n 20 "$LOGS/sshd.log" >&2 || true
            die "sshd exited (log: $LOGS/sshd.log)"
        }
        ssh -F "$d/config" -o ConnectTimeout=2 ferry-peers true 2>/dev/null && return 0
        sleep 0.1
    done
    ssh -F "$d/config" -o ConnectTimeout=2 ferry-peers true || true
    die "cannot log in to sshd on 127.0.0.1:$SSH_PORT with the generated key (log: $LOGS/sshd.log)"
}

# start_ferry NAME ROOT [tls]: starts `ferry serve --impl $FERRY_IMPL` on a port the kernel
# picks and sets FERRY_ADDR. Returns 2 when this ferry binary does not know the implementation.
# --allow-hard-links: the served files are hard links to src/ (pub/, see "Data"), which ferry
# refuses to serve by default (SEC-13). With `tls`: ferry/1 over TLS with a self-signed key
# kept in $WORK/etc/ferry-tls (made by the first server, reused by the next), and FERRY_FP set
# to the key's fingerprint from the `TLS key SHA256:...` line printed before `listening on`;
# returns 3 (FERRY_WHY says why) when the server does not start with TLS.
start_ferry() {
    local name=$1 root=$2 i
    local -a tls=()
    [[ ${3:-} == tls ]] && tls=(--tls-self-signed --tls-dir "$WORK/etc/ferry-tls")
    FERRY_ADDR="" FERRY_FP="" FERRY_WHY=""
    mkdir -p "$root"
    start_daemon "$name" env FERRY_LOG=warn "$FERRY_BIN" serve --impl "$FERRY_IMPL" --root "$root" \
        --listen 127.0.0.1:0 --allow-hard-links "${tls[@]}"
    for ((i = 0; i < 100; i++)); do
        FERRY_ADDR=$(sed -n 's/^listening on //p' "$LOGS/$name.log" | head -n 1)
        if [[ -n $FERRY_ADDR ]]; then
            if ((${#tls[@]})); then
                FERRY_FP=$(sed -n 's/^TLS key \(SHA256:[^ ]*\).*/\1/p' "$LOGS/$name.log" | head -n 1)
                [[ -n $FERRY_FP ]] ||
                    die "ferry serve --tls-self-signed printed no 'TLS key SHA256:...' line (log: $LOGS/$name.log)"
                # A build whose engines do not serve TLS announces its address, then stops.
                sleep 0.3
                if ! kill -0 "${DAEMON_PID[$name]}" 2>/dev/null; then
                    wait "${DAEMON_PID[$name]}" || true
                    unset "DAEMON_PID[$name]"
                    FERRY_WHY=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-200)
                    return 3
                fi
            fi
            wait_listen "$name" "${FERRY_ADDR##*:}"
            return 0
        fi
        if ! kill -0 "${DAEMON_PID[$name]}" 2>/dev/null; then
            local rc=0
            wait "${DAEMON_PID[$name]}" || rc=$?
            unset "DAEMON_PID[$name]"
            grep -q "invalid value" "$LOGS/$name.log" && return 2
            if ((${#tls[@]})); then
                FERRY_WHY=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-200)
                return 3
            fi
            tail -n 20 "$LOGS/$name.log" >&2 || true
            die "ferry serve --impl $FERRY_IMPL exited with $rc (log: $LOGS/$name.log)"
        fi
        sleep 0.1
    done
    die "ferry serve --impl $FERRY_IMPL printed no 'listening on' line in 10 s (log: $LOGS/$name.log)"
}

# ---------------------------------------------------------------------------------------------
# Run

log "tools: ${SEL_TOOLS[*]}; ferry impls: ${SEL_IMPLS[*]}; RUNS=$RUNS CONNS=$CONNS"
FERRY_IMPL=""
for tool in "${ALL_TOOLS[@]}"; do
    want "$tool" || continue
    case $tool in
    vsftpd | vsftpd-tls | nginx | nginx-tls | rsync | sftp)
        [[ $tool == *-tls ]] && make_tls_cert
        "setup_${tool//-/_}"
        run_all_cases "$tool"
        if [[ $tool == sftp ]]; then stop_daemon sshd; else stop_daemon "$tool"; fi
        ;;
    ferry | ferry-tls)
        over=""
        [[ $tool == ferry-tls ]] && over=tls
        # The client pins the server's key with --fingerprint; a ferry without it gives n/a
        # rows (never a plain fallback).
        no_client=""
        if [[ -n $over ]] && ! "$FERRY_BIN" get --help 2>/dev/null | grep -q -- --fingerprint; then
            no_client="this ferry client has no --fingerprint (ferrys:// with a pinned key) yet"
        fi
        for FERRY_IMPL in "${SEL_IMPLS[@]}"; do
            if [[ -n $no_client ]]; then
                log "$tool: $no_client"
                na_cases "$tool" "$FERRY_IMPL" "$no_client"
                continue
            fi
            rc=0
            start_ferry "$tool-$FERRY_IMPL-get" "$PUB" $over || rc=$?
            if ((rc == 2)); then
                log "$tool: $FERRY_BIN has no --impl $FERRY_IMPL"
                na_cases "$tool" "$FERRY_IMPL" "this ferry binary has no --impl $FERRY_IMPL"
                continue
            fi
            if ((rc == 3)); then
                log "$tool: ferry serve --impl $FERRY_IMPL --tls-self-signed did not start: $FERRY_WHY"
                na_cases "$tool" "$FERRY_IMPL" "ferry serve --tls-self-signed did not start: $FERRY_WHY"
                continue
            fi
            FERRY_GET_ADDR=$FERRY_ADDR
            UPDIR[$tool]=$WORK/up/$tool-$FERRY_IMPL
            rc=0
            start_ferry "$tool-$FERRY_IMPL-put" "${UPDIR[$tool]}" $over || rc=$?
            ((rc == 0)) || die "$tool: the upload server did not start after the download server did (log: $LOGS/$tool-$FERRY_IMPL-put.log)"
            FERRY_PUT_ADDR=$FERRY_ADDR
            run_all_cases "$tool"
            stop_daemon "$tool-$FERRY_IMPL-get"
            stop_daemon "$tool-$FERRY_IMPL-put"
        done
        FERRY_IMPL=""
        ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Report

jq -s . "$RECORDS" >"$OUT/peers.json"
rm -f "$RECORDS"
# The exact client commands (case scripts and their lftp/curl/sftp/rsync list files).
rm -rf "$OUT/cases"
cp -r "$CASES" "$OUT/cases"

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
{
    echo "# ferry peers benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, Linux $(uname -r), ferry at" \
        "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (modified)')."
    echo
    echo "Workloads: large = 1 file of $LARGE_MIB MiB, small = $SMALL_COUNT files of $SMALL_SIZE B," \
        "random bytes, server roots and client folders on tmpfs. Times: whole client commands" \
        "(process start included), median, min and max of $RUNS runs after 1 warm-up" \
        "($( ((HAVE_HYPERFINE)) && echo 'hyperfine -N' || echo 'date loop')). conns > 1: the file list split" \
        "in parts, one client command per part, all at once. MB = 10^6 bytes." \
        "Every result was checked against the source (ok)."
    echo
    echo "Versions: vsftpd $(pkg_version vsftpd), lftp $(pkg_version lftp), nginx $(pkg_version nginx), curl $(pkg_version curl)," \
        "rsync $(pkg_version rsync), OpenSSH $(pkg_version openssh-server), OpenSSL $(pkg_version openssl)$(want_any ferry ferry-tls && echo ", $("$FERRY_BIN" --version)")."
    echo
    echo "| workload | direction | conns | tool | client | files | MB | median s | min s | max s | MB/s | files/s | ok | note |"
    echo "|---|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|"
    jq -r '
        def wo: if .workload == "large" then 0 else 1 end;
        def to: {"vsftpd": 0, "vsftpd-tls": 1, "nginx": 2, "nginx-tls": 3, "rsync": 4, "sftp": 5,
                 "ferry": 6, "ferry-tls": 7}[.tool];
        def io: ({"threads": 0, "tokio": 1, "async-std": 2, "smol": 3}[.impl // ""] // 0);
        def s: if . == null then "" else tostring end;
        sort_by([wo, .direction, .connections, to, io])[]
        | [.workload, .direction, (.connections | s),
           (.tool + (if .impl then " (" + .impl + ")" else "" end)), .client,
           (.files | s), (.bytes | s), (.median_s | s), (.min_s | s), (.max_s | s),
           (.mb_per_s | s), (.files_per_s | s),
           (if .ok == true then "ok" elif .ok == false then "FAILED" else "n/a" end), .note]
        | @tsv' "$OUT/peers.json" |
        awk -F'\t' '
            function f(x, d) { return x == "" ? "-" : sprintf("%." d "f", x) }
            {
                note = $14; gsub(/\|/, "\\|", note)
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    $1, $2, $3, $4, $5, $6, f($7 / 1e6, 1), f($8, 3), f($9, 3), f($10, 3),
                    f($11, 1), f($12, 0), $13, note
            }'
} >"$OUT/peers.md"

echo
cat "$OUT/peers.md"
echo
log "results: $OUT/peers.json, $OUT/peers.md, $OUT/raw/"
