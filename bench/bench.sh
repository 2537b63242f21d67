#!/usr/bin/env bash
# Functions are called indirectly ("setup_$tool", traps, xargs):
# shellcheck disable=SC2317
# Throughput and memory benchmark of uca against the tools people use
# instead: an OpenSSL shell loop, cfssl + cfssljson, and mkcert. Not a test.
#
# In one run, sequentially (never two tools at once), it
#   1. issues the same certificates with every tool: P-256 key, CN and
#      SAN DNS:svcI.internal, serverAuth + clientAuth, one directory per
#      certificate holding cert.pem and its key;
#   2. runs uca at 10,000 and (unless --quick) 100,000 certificates with
#      /usr/bin/time for the peak RSS, and times the file-system floor (the
#      same files written by a small C program, no crypto); with --million
#      also 1,000,000 certificates;
#   3. times `uca verify --manifest` and `uca check` over the largest run's
#      output, and measures the stripped size of the uca binary;
#   4. checks every output is real (cert.pem count, `openssl verify` of a
#      sample for server and client use, P-256, SAN, key matches);
#   5. prints certificates/second, uca's ratio to each peer, and the goals
#      with PASS/FAIL and the measured numbers.
#
# Usage: bench/bench.sh [-n N] [-p M] [-r R] [-j J] [--quick] [--big]
#          [--million] [--uca PATH] [--no-install] [--no-floor] [--settle S]
#          [--keep] [--strict]
# Run bench/bench.sh -h for the details.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/bench.sh [options]

  -n N          certificates issued by uca in the comparison (default 2000)
  -p M          certificates issued by each peer (default min(N, 300)); peers
                run ~30-200 certificates/s, so their rate comes from M
                certificates while uca's comes from N
  -r R          uca runs per size; the median wall time is reported and
                judged, the best is shown too (default 3)
  -j J          peers run J certificates at a time (default 1: the usual
                one-at-a-time shell loop; uca always uses every core)
  --quick       skip the 100,000-certificate run (its RSS goal, and the
                verify and check rates are then measured over 10,000 only)
  --big         run the 100,000-certificate run even with --quick
  --million     also run 1,000,000 certificates (the plan limit) for the
                flat-memory goal: about 26 GB of disk and many minutes
  --uca PATH    benchmark this uca binary instead of building one
  --no-install  do not apt-get install missing peers (they are skipped)
  --no-floor    skip the file-system floor (needs cc): the same files
                written by a small C program, no crypto
  --settle S    before each timed run wait up to S seconds (default 30) for
                a quiet machine (other processes using < 1/4 of the CPU over
                one second); on ext4 without a journal also wait until 6
                minutes have passed since an earlier bench run removed its
                files (see below). 0 does not wait at all. The output says
                how busy the machine was during every uca run either way
  --keep        keep the work directory (printed) instead of removing it
  --strict      exit 1 if any goal fails (default: exit 0 once measured)
  -h, --help    this text

Goals checked, each from numbers measured in this run:
  - 10,000 certificates with their files within 1.25x the file-system floor
    (uca's median wall time over the floor program's, same files);
  - a whole ceremony into one archive (--archive) at >= 25,000
    certificates/s (100,000 certificates; 10,000 with --quick), printed next
    to the crypto floor (examples/crypto_floor.rs: rcgen + ring key
    generation and signing on every core, no files);
  - peak RSS < 64 MiB at 100,000 certificates, and at 1,000,000 (--million),
    where `uca verify --manifest` must stay under 64 MiB too and stock
    OpenSSL must verify the seal with the command the manifest gives;
  - uca's 10,000-certificate rate >= 50x the fastest peer's;
  - the static release binary (as ./install.sh builds it) < 5 MB (5,000,000 bytes);
  - `uca verify --manifest` and `uca check` >= 20,000 certificates/s over
    the 100,000-certificate run's output.
All work happens under one `mktemp -d` (honours TMPDIR), every run in a new
directory, removed at the end.

On ext4 without a journal the kernel will not reuse an inode freed in the
last 1 to 6 minutes and scans past every such inode on each file it creates:
right after a large deletion (an earlier bench run's clean-up, `cargo clean`)
creating files costs several times more system time.
EOF
}

die() {
    echo "bench.sh: error: $*" >&2
    exit 2
}
warn() { echo "bench.sh: warning: $*" >&2; }
note() { echo "  $*"; }

N=2000
M=""
REPEAT=3
JOBS=1
QUICK=0
BIG=0
MILLION=0
UCA_BIN=""
INSTALL=1
KEEP=0
STRICT=0
FLOOR=1
SETTLE=30
while [ $# -gt 0 ]; do
    case "$1" in
    -n) N="${2:-}"; shift 2 || die "-n needs a number" ;;
    -p) M="${2:-}"; shift 2 || die "-p needs a number" ;;
    -r) REPEAT="${2:-}"; shift 2 || die "-r needs a number" ;;
    -j) JOBS="${2:-}"; shift 2 || die "-j needs a number" ;;
    -n*) N="${1#-n}"; shift ;;
    -p*) M="${1#-p}"; shift ;;
    -r*) REPEAT="${1#-r}"; shift ;;
    -j*) JOBS="${1#-j}"; shift ;;
    --quick) QUICK=1; shift ;;
    --big) BIG=1; shift ;;
    --million) MILLION=1; shift ;;
    --uca) UCA_BIN="${2:-}"; shift 2 || die "--uca needs a path" ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    --no-floor) FLOOR=0; shift ;;
    --settle) SETTLE="${2:-}"; shift 2 || die "--settle needs a number of seconds" ;;
    --strict) STRICT=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
is_count() { [[ "$1" =~ ^[1-9][0-9]{0,6}$ ]]; }
is_count "$N" || die "-n: expected a whole number from 1 to 9999999, got '$N'"
[ -n "$M" ] || M=$((N < 300 ? N : 300))
is_count "$M" || die "-p: expected a whole number from 1 to 9999999, got '$M'"
is_count "$REPEAT" || die "-r: expected a whole number >= 1, got '$REPEAT'"
is_count "$JOBS" || die "-j: expected a whole number >= 1, got '$JOBS'"
[[ "$SETTLE" =~ ^[0-9]{1,4}$ ]] || die "--settle: expected a number of seconds, got '$SETTLE'"
RUN_100K=1
if [ "$QUICK" -eq 1 ] && [ "$BIG" -eq 0 ]; then RUN_100K=0; fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
if [ ! -f Cargo.toml ] || [ ! -f src/ca/bulk.rs ]; then
    die "$REPO does not look like the uca repository"
fi

if [ -n "${EPOCHREALTIME:-}" ]; then
    now() { echo "${EPOCHREALTIME/,/.}"; }
else
    now() { date +%s.%N; }
fi

# ---------------------------------------------------------------- tools --
# shellcheck source=scripts/apt.sh
source scripts/apt.sh
install_tool() { # PACKAGE: 0 if it installed
    [ "$INSTALL" -eq 1 ] || return 1
    # Not `| grep -q`: under pipefail, grep leaving early makes apt-cache
    # die of SIGPIPE and the package look missing.
    local policy
    policy=$(apt-cache policy "$1" 2>/dev/null) || true
    if ! [[ "$policy" =~ Candidate:\ [0-9] ]]; then
        warn "no Debian package named $1 here"
        return 1
    fi
    apt_install "$1"
}
have() { command -v "$1" >/dev/null 2>&1; }

[ -x /usr/bin/time ] || install_tool time || die "/usr/bin/time (Debian package 'time') is needed for peak RSS"
have openssl || install_tool openssl || die "openssl is needed (it is a peer and checks every tool's output)"
if ! { have cfssl && have cfssljson; }; then
    install_tool golang-cfssl || warn "cfssl/cfssljson missing (Debian package golang-cfssl): that peer is skipped"
fi
have mkcert || install_tool mkcert || warn "mkcert missing (Debian package mkcert): that peer is skipped"
PEERS=(openssl)
{ have cfssl && have cfssljson; } && PEERS+=(cfssl)
have mkcert && PEERS+=(mkcert)

# ----------------------------------------------------------- work area --
WORK=$(mktemp -d "${TMPDIR:-/tmp}/uca-bench.XXXXXX")
SAMPLER_PID=""
# Removing a million small files one by one takes many minutes on a file
# system mounted with `discard` (every freed block is trimmed synchronously),
# so the certificate directories go in parallel first.
STAMP="${TMPDIR:-/tmp}/uca-bench.last-cleanup"
WROTE_CERTS=0
remove_work() {
    find "$WORK" -mindepth 2 -maxdepth 3 -type d -name 'svc*' -print0 2>/dev/null |
        xargs -0 -r -n 1000 -P 8 rm -rf -- 2>/dev/null || true
    rm -rf "$WORK"
    if [ "$WROTE_CERTS" -eq 1 ]; then touch "$STAMP" 2>/dev/null || true; fi
}
cleanup() {
    local rc=$?
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ "$KEEP" -eq 1 ]; then
        echo "work directory kept: $WORK"
    else
        remove_work
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Disk: about 24 KiB and 6 inodes per certificate (directory + 4 files on
# ext4), plus the ledger and manifest.
TOTAL_CERTS=$((N * REPEAT + 10000 * REPEAT * (1 + 2 * FLOOR) + RUN_100K * 100000 + 10000 + RUN_100K * 90000 + MILLION * 1000000 + M * ${#PEERS[@]}))
need_kib=$((TOTAL_CERTS * 26 + 200000))
need_inodes=$((TOTAL_CERTS * 7))
free_kib=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
free_inodes=$(df -Pi "$WORK" | awk 'NR == 2 { print $4 }')
[ "$free_kib" -ge "$need_kib" ] ||
    die "$WORK has $((free_kib / 1024)) MiB free; this run needs about $((need_kib / 1024)) MiB (use --quick, a smaller -n, or TMPDIR elsewhere)"
if [[ "$free_inodes" =~ ^[0-9]+$ ]] && [ "$free_inodes" -lt "$need_inodes" ]; then
    die "$WORK has $free_inodes free inodes; this run needs about $need_inodes"
fi

# ----------------------------------------------------------------- uca --
if [ -z "$UCA_BIN" ]; then
    have cargo || die "cargo is needed to build uca (or pass --uca PATH)"
    echo "==> cargo build --release (may wait for the target directory lock)" >&2
    if ! cargo build --release >"$WORK/build.log" 2>&1; then
        tail -n 40 "$WORK/build.log" >&2
        die "cargo build --release failed"
    fi
    UCA_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/uca"
fi
# The crypto floor: rcgen + ring key generation and signing, no files
# (examples/crypto_floor.rs), built with uca's own release profile.
FLOOR_BIN=""
if have cargo; then
    echo "==> cargo build --release --example crypto_floor" >&2
    if cargo build --release --example crypto_floor >"$WORK/build-floor.log" 2>&1; then
        FLOOR_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/examples/crypto_floor"
        cp "$FLOOR_BIN" "$WORK/crypto_floor"
        FLOOR_BIN="$WORK/crypto_floor"
    else
        warn "the crypto floor (examples/crypto_floor.rs) did not build: $(tail -n 1 "$WORK/build-floor.log")"
    fi
fi
[ -x "$UCA_BIN" ] || die "no uca binary at $UCA_BIN"
# Our own copy: a concurrent build in the shared target directory must not
# swap the binary in the middle of the benchmark.
cp "$UCA_BIN" "$WORK/uca"
UCA="$WORK/uca"
"$UCA" --version >/dev/null || die "$UCA does not run"

# ------------------------------------------------------------- helpers --
name_of() { echo "svc$1.internal"; }

# Indices of the sample to check: first, last and three in between.
sample_indices() { # COUNT
    local c=$1
    printf '%s\n' 1 "$c" $(((c + 1) / 2)) $(((c + 2) / 3)) $((1 + (c * 7 / 9))) |
        awk -v c="$c" '$1 >= 1 && $1 <= c' | sort -un
}

# Checks one tool's output: exactly COUNT cert.pem files, and for a sample
# each verifies against CA for server and client use, is P-256, carries
# its DNS name and matches its key. Prints "COUNT files, K/K verified".
check_output() { # CA CERTS_DIR KEY_FILE_NAME COUNT
    local ca=$1 dir=$2 keyname=$3 count=$4 found ok=0 total=0 i name cert key
    found=$(find "$dir" -name cert.pem -type f | wc -l)
    if [ "$found" -ne "$count" ]; then
        echo "FAILED: $found cert.pem files, expected $count"
        return 1
    fi
    for i in $(sample_indices "$count"); do
        total=$((total + 1))
        name=$(name_of "$i")
        cert="$dir/$name/cert.pem"
        key="$dir/$name/$keyname"
        local why=""
        openssl verify -CAfile "$ca" -purpose sslserver "$cert" >/dev/null 2>&1 || why="not valid for server use"
        openssl verify -CAfile "$ca" -purpose sslclient "$cert" >/dev/null 2>&1 || why="$why not valid for client use"
        local text
        text=$(openssl x509 -in "$cert" -noout -text 2>/dev/null || true)
        [[ "$text" == *prime256v1* ]] || why="$why not P-256"
        [[ "$text" == *"DNS:$name"* ]] || why="$why no SAN DNS:$name"
        [ "$(openssl pkey -in "$key" -pubout 2>/dev/null)" = "$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" ] ||
            why="$why key does not match"
        if [ -z "$why" ]; then
            ok=$((ok + 1))
        else
            echo "FAILED: $cert:$why"
            return 1
        fi
    done
    echo "$found files, $ok/$total verified"
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# The lower median of a list of numbers.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
NCPU=$(nproc)
# CPU time used by the whole machine so far, in clock ticks.
cpu_busy() {
    local _cpu user nice system _idle _iowait irq softirq _rest
    read -r _cpu user nice system _idle _iowait irq softirq _rest </proc/stat
    echo $((user + nice + system + irq + softirq))
}
# Waits until the rest of the machine uses under a quarter of the CPU for
# one second, at most SETTLE seconds.
wait_quiet() {
    local start=$SECONDS b0 b1
    [ "$SETTLE" -gt 0 ] || return 0
    while :; do
        b0=$(cpu_busy)
        sleep 1
        b1=$(cpu_busy)
        [ $(((b1 - b0) * 4)) -ge $((CLK_TCK * NCPU)) ] || return 0
        [ $((SECONDS - start)) -lt "$SETTLE" ] || return 0
    done
}
fstype() { findmnt -no FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; }
# 0 if DIR is on ext4 mounted without a journal (no jbd2 for its device).
ext4_without_journal() {
    local src
    [ "$(fstype "$1")" = ext4 ] || return 1
    src=$(findmnt -no SOURCE -T "$1" 2>/dev/null) || return 1
    [ -d /proc/fs/jbd2 ] || return 1
    ! compgen -G "/proc/fs/jbd2/${src##*/}-*" >/dev/null
}
# On such a file system, waits out 6 minutes after an earlier clean-up.
wait_after_cleanup() {
    local age left
    [ "$SETTLE" -gt 0 ] && [ -e "$STAMP" ] || return 0
    ext4_without_journal "$WORK" || return 0
    age=$(($(date +%s) - $(stat -c %Y "$STAMP")))
    left=$((360 - age))
    [ "$left" -gt 0 ] || return 0
    echo "==> an earlier bench run removed its files ${age} s ago; this ext4 has no journal and" >&2
    echo "    skips inodes freed in the last minutes: waiting ${left} s (--settle 0 does not wait)" >&2
    sleep "$left"
}

ROW_FMT='  %-18s %6s %9s %9s %8s %8s %10s  %s\n'
row_header() {
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "run" "certs" "wall s" "certs/s" "user s" "sys s" "peak RSS" "output check"
}

# ------------------------------------------------------------ uca runs --
plan_for() { # COUNT -> path of a plan issuing COUNT certificates
    local count=$1 plan="$WORK/plan-$1.toml"
    if [ ! -f "$plan" ]; then
        cat >"$plan" <<EOF
# Generated by bench/bench.sh: $count P-256 mTLS (server + client) certificates.
[ca]
name = "uca bench root"
key = "ec-p256"
days = 3650
permit = ["internal"]

[defaults]
profile = "both"
key = "ec-p256"
days = 397
san_rules = ["none"]
formats = ["pem"]

[[group]]
name = "svc"
names = ["svc{1..$count}.internal"]
EOF
    fi
    echo "$plan"
}

# Samples the RSS of the uca process every 0.1 s, marking whether the last
# certificate directory exists yet (after it: ledger read, manifest, seal).
rss_sampler() { # TIME_PID LAST_CERT_DIR OUTFILE
    local tpid=$1 last=$2 out=$3 upid="" k v rest phase
    while kill -0 "$tpid" 2>/dev/null; do
        if [ -z "$upid" ]; then
            upid=$(pgrep -P "$tpid" 2>/dev/null | head -n 1 || true)
        fi
        if [ -n "$upid" ] && [ -r "/proc/$upid/status" ]; then
            phase=issue
            [ -e "$last" ] && phase=after
            while read -r k v rest; do
                if [ "$k" = "VmRSS:" ]; then echo "$phase $v" >>"$out"; fi
            done 2>/dev/null <"/proc/$upid/status" || true
        fi
        sleep 0.1
    done
}

# One uca ceremony of COUNT certificates in a new directory. Sets R_WALL,
# R_ISSUE (the issuing phase as uca reports it), R_USER, R_SYS, R_RSS (KiB),
# R_CHECK, R_OUT (its output directory), and with SAMPLE=1 R_RSS_ISSUE /
# R_RSS_AFTER (KiB, sampled).
RUN_ID=0
uca_run() { # COUNT SAMPLE
    local count=$1 sample=$2 plan out t0 t1 rc tpid
    plan=$(plan_for "$count")
    RUN_ID=$((RUN_ID + 1))
    out="$WORK/uca-$count-run$RUN_ID"
    R_OUT=$out
    sync
    wait_quiet
    local busy0 busy1
    busy0=$(cpu_busy)
    t0=$(now)
    if [ "$sample" -eq 1 ]; then
        /usr/bin/time -f '%e %M %U %S' -o "$out.time" \
            "$UCA" ceremony "$plan" --out "$out" --json >"$out.json" 2>"$out.err" &
        tpid=$!
        rss_sampler "$tpid" "$out/certs/$(name_of "$count")" "$out.rss" &
        SAMPLER_PID=$!
        rc=0
        wait "$tpid" || rc=$?
        t1=$(now)
        wait "$SAMPLER_PID" || true
        SAMPLER_PID=""
    else
        rc=0
        /usr/bin/time -f '%e %M %U %S' -o "$out.time" \
            "$UCA" ceremony "$plan" --out "$out" --json >"$out.json" 2>"$out.err" || rc=$?
        t1=$(now)
    fi
    busy1=$(cpu_busy)
    if [ "$rc" -ne 0 ]; then
        cat "$out.err" >&2
        die "uca ceremony of $count certificates failed (exit $rc)"
    fi
    R_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    # The last line: /usr/bin/time puts a note about the exit status first.
    read -r _ R_RSS R_USER R_SYS < <(tail -n 1 "$out.time")
    R_ISSUE=$(grep -o '"seconds":[0-9.]*' "$out.json" | cut -d: -f2 || true)
    R_ISSUE=$(awk -v s="${R_ISSUE:-0}" 'BEGIN { printf "%.3f", s }')
    # CPU the rest of the machine used meanwhile: other builds skew the run.
    R_OTHERS=$(awk -v b="$((busy1 - busy0))" -v hz="$CLK_TCK" -v u="$R_USER" -v s="$R_SYS" \
        'BEGIN { o = b / hz - u - s; printf "%.1f", (o < 0 ? 0 : o) }')
    R_AVAIL=$(awk -v w="$R_WALL" -v c="$NCPU" 'BEGIN { printf "%.1f", w * c }')
    local leftovers
    leftovers=$(find "$out/certs" -maxdepth 1 -name '.*' | wc -l)
    if ! R_CHECK=$(check_output "$out/ca/ca.pem" "$out/certs" key.pem "$count"); then
        die "uca output of $count certificates is wrong: $R_CHECK"
    fi
    [ "$leftovers" -eq 0 ] || die "uca left $leftovers hidden temporary entries in $out/certs"
    if [ "$sample" -eq 1 ] && [ -s "$out.rss" ]; then
        R_RSS_ISSUE=$(awk '$1 == "issue" && $2 > m { m = $2 } END { print m + 0 }' "$out.rss")
        R_RSS_AFTER=$(awk '$1 == "after" && $2 > m { m = $2 } END { print m + 0 }' "$out.rss")
    fi
}

uca_series() { # COUNT RUNS SAMPLE LABEL -> U_WALLS (array), U_MEDIAN, U_BEST, U_RSS
    local count=$1 runs=$2 sample=$3 label=$4 i
    U_WALLS=()
    U_RSS=0
    local others=0 avail=0
    for ((i = 1; i <= runs; i++)); do
        uca_run "$count" "$sample"
        U_WALLS+=("$R_WALL")
        others=$(awk -v a="$others" -v b="$R_OTHERS" 'BEGIN { print a + b }')
        avail=$(awk -v a="$avail" -v b="$R_AVAIL" 'BEGIN { print a + b }')
        if [ "$R_RSS" -gt "$U_RSS" ]; then U_RSS=$R_RSS; fi
        # shellcheck disable=SC2059
        printf "$ROW_FMT" "$label run $i" "$count" "$R_WALL" "$(rate "$count" "$R_WALL")" \
            "$R_USER" "$R_SYS" "$(mib "$R_RSS") MiB" "$R_CHECK"
        note "    issuing $R_ISSUE s (uca's clock), the rest (CA, validation, seal) $(awk -v w="$R_WALL" -v i="$R_ISSUE" 'BEGIN { printf "%.3f", w - i }') s; other processes used $R_OTHERS of the $R_AVAIL CPU-s the machine had"
        if [ "$sample" -eq 1 ] && [ -n "${R_RSS_ISSUE:-}" ]; then
            note "    RSS sampled every 0.1 s: $(mib "$R_RSS_ISSUE") MiB at most while issuing, $(mib "$R_RSS_AFTER") MiB at most after the last certificate (ledger read, manifest, seal)"
        fi
    done
    U_BUSY=$(awk -v o="$others" -v a="$avail" 'BEGIN { printf "%.0f", (a > 0 ? 100 * o / a : 0) }')
    U_MEDIAN=$(median "${U_WALLS[@]}")
    U_BEST=$(best "${U_WALLS[@]}")
}

# --------------------------------------------------------------- peers --
# Each peer: setup_X DIR (CA and config, not timed) and one_X DIR OUT NAME
# (one certificate into OUT/NAME/, timed). DIR holds the CA.
setup_openssl() {
    local d=$1
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=Bench OpenSSL Root" -days 3650 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$d/setup.log"
    cat >"$d/ext.cnf" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    PEER_CA="$d/ca.pem"
    PEER_KEY=key.pem
}
# OpenSSL 3 picks a random serial when neither -CAserial nor
# -CAcreateserial is given; -copy_extensions copies the CSR's SAN.
one_openssl() {
    local d=$1 out=$2 name=$3
    mkdir "$out/$name" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$out/$name/key.pem" -subj "/CN=$name" \
            -addext "subjectAltName=DNS:$name" 2>>"$d/stderr.log" |
        openssl x509 -req -CA "$d/ca.pem" -CAkey "$d/ca.key" -days 397 \
            -copy_extensions copy -extfile "$d/ext.cnf" \
            -out "$out/$name/cert.pem" 2>>"$d/stderr.log"
}

setup_cfssl() {
    local d=$1
    echo '{"CN":"Bench cfssl Root","key":{"algo":"ecdsa","size":256},"ca":{"expiry":"87600h"}}' |
        cfssl gencert -initca - 2>"$d/setup.log" | (cd "$d" && cfssljson -bare ca)
    # 397 days = 9528 h.
    cat >"$d/config.json" <<'EOF'
{"signing": {"default": {"expiry": "9528h"},
 "profiles": {"mtls": {"expiry": "9528h",
   "usages": ["digital signature", "server auth", "client auth"]}}}}
EOF
    PEER_CA="$d/ca.pem"
    PEER_KEY="cert-key.pem"
}
one_cfssl() {
    local d=$1 out=$2 name=$3
    mkdir "$out/$name" &&
        printf '{"CN":"%s","hosts":["%s"],"key":{"algo":"ecdsa","size":256}}\n' "$name" "$name" |
        cfssl gencert -ca "$d/ca.pem" -ca-key "$d/ca-key.pem" -config "$d/config.json" \
            -profile mtls - 2>>"$d/stderr.log" |
        (cd "$out/$name" && cfssljson -bare cert)
}

# mkcert makes its CA on first use: a warm-up certificate, not timed.
setup_mkcert() {
    local d=$1
    mkdir "$d/caroot" "$d/warmup"
    CAROOT="$d/caroot" mkcert -ecdsa -client -cert-file "$d/warmup/cert.pem" \
        -key-file "$d/warmup/key.pem" warmup.internal >"$d/setup.log" 2>&1
    PEER_CA="$d/caroot/rootCA.pem"
    PEER_KEY=key.pem
}
one_mkcert() {
    local d=$1 out=$2 name=$3
    mkdir "$out/$name" &&
        CAROOT="$d/caroot" mkcert -ecdsa -client -cert-file "$out/$name/cert.pem" \
            -key-file "$out/$name/key.pem" "$name" >/dev/null 2>>"$d/stderr.log"
}
export -f one_openssl one_cfssl one_mkcert

# Runs peer TOOL on M certificates. Sets P_WALL, P_CHECK, P_VALID (0/1).
peer_run() { # TOOL
    local tool=$1 d out t0 t1 i name
    d="$WORK/peer-$tool"
    out="$d/certs"
    mkdir "$d"
    "setup_$tool" "$d" || die "setting up the $tool CA failed: $(tail -n 5 "$d/setup.log" 2>/dev/null)"
    mkdir "$out"
    sync
    wait_quiet
    t0=$(now)
    if [ "$JOBS" -eq 1 ]; then
        for ((i = 1; i <= M; i++)); do
            name="svc$i.internal"
            "one_$tool" "$d" "$out" "$name" ||
                die "$tool failed on $name: $(tail -n 5 "$d/stderr.log" 2>/dev/null)"
        done
    else
        # shellcheck disable=SC2016
        seq 1 "$M" | xargs -n 1 -P "$JOBS" bash -c 'one_'"$tool"' "$0" "$1" "svc$2.internal"' "$d" "$out" ||
            die "$tool failed: $(tail -n 5 "$d/stderr.log" 2>/dev/null)"
    fi
    t1=$(now)
    P_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    P_VALID=1
    if ! P_CHECK=$(check_output "$PEER_CA" "$out" "$PEER_KEY" "$M"); then
        P_VALID=0
        warn "$tool output is wrong ($P_CHECK); it is left out of the comparison"
    fi
}

run_floor() {
    [ "$FLOOR" -eq 1 ] || return 0
    if ! have cc; then
        note "no C compiler (cc): the file-system floor is skipped"
        return 0
    fi
    echo
    note "-- File-system floor: the same files, no crypto, no ledger, no uca"
    note "A small C program writes 10,000 directories the way uca lays them out, $NCPU processes,"
    note "one sync at the end: what the files alone cost on this machine now (noise included)."
    floor_src="$WORK/floor.c"
    cat >"$floor_src" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
/* floor ROOT N PROCS NFILES RENAME: N directories of NFILES PEM-sized
   files, each written into a hidden directory renamed into place if RENAME. */
int main(int argc, char **argv) {
    if (argc != 6) return 2;
    const char *root = argv[1];
    int n = atoi(argv[2]), procs = atoi(argv[3]), nfiles = atoi(argv[4]), ren = atoi(argv[5]);
    static const char *names[4] = {"cert.pem", "key.pem", "chain.pem", "ca.pem"};
    static const int sizes[4] = {720, 241, 1320, 600};
    static char buf[2048];
    memset(buf, 'A', sizeof buf);
    if (mkdir(root, 0755)) { perror(root); return 1; }
    for (int w = 0; w < procs; w++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid) continue;
        char dst[4096], tmp[4096], f[4200];
        for (int i = w + 1; i <= n; i += procs) {
            snprintf(dst, sizeof dst, "%s/svc%d.internal", root, i);
            snprintf(tmp, sizeof tmp, ren ? "%s/.svc%d.internal.tmp" : "%s/svc%d.internal", root, i);
            if (mkdir(tmp, 0755)) { perror(tmp); _exit(1); }
            for (int k = 0; k < nfiles; k++) {
                snprintf(f, sizeof f, "%s/%s", tmp, names[k]);
                int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, k == 1 ? 0600 : 0644);
                if (fd < 0 || write(fd, buf, sizes[k]) != sizes[k] || close(fd)) { perror(f); _exit(1); }
            }
            if (ren && rename(tmp, dst)) { perror(dst); _exit(1); }
        }
        _exit(0);
    }
    int status, failed = 0;
    while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status);
    sync();
    return failed;
}
EOF
    if cc -O2 -o "$WORK/floor" "$floor_src" 2>"$WORK/floor.log"; then
        floor_series() { # LABEL NFILES RENAME
            local walls=() i d t0 t1 w
            for ((i = 1; i <= REPEAT; i++)); do
                d="$WORK/floor-$2-$3-$i"
                sync
                wait_quiet
                t0=$(now)
                "$WORK/floor" "$d" 10000 "$NCPU" "$2" "$3" || die "the file-system floor program failed"
                t1=$(now)
                w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
                walls+=("$w")
            done
            w=$(median "${walls[@]}")
            # shellcheck disable=SC2059
            printf "$ROW_FMT" "$1" 10000 "$w" "$(rate 10000 "$w")" "" "" "" "median of $REPEAT: ${walls[*]}"
            FLOOR_LAST=$w
        }
        floor_series "floor, uca layout" 4 1
        FLOOR_UCA_LAYOUT=$FLOOR_LAST
        note "    (4 files: cert, key, chain, ca.pem, in a hidden directory renamed into place)"
        floor_series "floor, 2 files" 2 0
        note "    (cert.pem and key.pem only, written in place)"
    else
        note "cc failed to build the floor program; skipped"
    fi
}

# ------------------------------------------------ verification at scale --
# Times `uca verify --manifest` and `uca check` over one ceremony's output
# (sealed: the ceremony wrote manifest.json and its signature). The files
# were just written, so they are read from the page cache. Sets V_WALL,
# V_RATE, C_WALL, C_RATE and VC_COUNT.
verify_check_run() { # OUTDIR COUNT
    local out=$1 count=$2 t0 t1 rc
    VC_COUNT=$count
    sync
    wait_quiet
    t0=$(now)
    rc=0
    "$UCA" verify --manifest "$out/ca/manifest.json" >"$out.verify" 2>&1 || rc=$?
    t1=$(now)
    [ "$rc" -eq 0 ] || die "uca verify --manifest failed on $out (exit $rc): $(tail -n 3 "$out.verify")"
    V_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    V_RATE=$(rate "$count" "$V_WALL")
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "verify --manifest" "$count" "$V_WALL" "$V_RATE" "" "" "" "$(tail -n 1 "$out.verify")"
    wait_quiet
    t0=$(now)
    rc=0
    "$UCA" check "$out/certs" --within 30d >"$out.check" 2>&1 || rc=$?
    t1=$(now)
    [ "$rc" -eq 0 ] || die "uca check failed on $out/certs (exit $rc): $(tail -n 3 "$out.check")"
    C_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    C_RATE=$(rate "$count" "$C_WALL")
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "check --within 30d" "$count" "$C_WALL" "$C_RATE" "" "" "" "$(tail -n 1 "$out.check")"
    note "    (rates per issued certificate; each directory also holds chain.pem and ca.pem, which check reads too)"
}

# The seal of the 1,000,000-certificate run, checked as anyone would: the
# peak RSS of `uca verify --manifest` (it streams the manifest), and stock
# OpenSSL running the command the manifest's verify_with gives (the one the
# README gives). Sets M_VERIFY_RSS, M_VERIFY_WALL, M_OPENSSL (PASS/FAIL)
# and M_OPENSSL_WALL.
million_seal_check() { # OUTDIR
    local out=$1 t0 t1 rc command
    rc=0
    /usr/bin/time -f '%e %M' -o "$out.verify.time" \
        "$UCA" verify --manifest "$out/ca/manifest.json" >"$out.verify" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || die "uca verify --manifest failed on $out (exit $rc): $(tail -n 3 "$out.verify")"
    read -r M_VERIFY_WALL M_VERIFY_RSS < <(tail -n 1 "$out.verify.time")
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "verify --manifest" 1000000 "$M_VERIFY_WALL" "$(rate 1000000 "$M_VERIFY_WALL")" "" "" "$(mib "$M_VERIFY_RSS") MiB" "$(tail -n 1 "$out.verify")"
    command=$(head -n 10 "$out/ca/manifest.json" | sed -n 's/^  "verify_with": "\(.*\)",$/\1/p')
    [ -n "$command" ] || die "no verify_with line in the head of $out/ca/manifest.json"
    t0=$(now)
    rc=0
    (cd "$out/ca" && sh -c "$command") >"$out.openssl" 2>&1 || rc=$?
    t1=$(now)
    M_OPENSSL_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    M_OPENSSL=FAIL
    [ "$rc" -eq 0 ] && grep -q "Signature Verified Successfully" "$out.openssl" && M_OPENSSL=PASS
    M_OPENSSL_COMMAND=$command
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "openssl check" 1000000 "$M_OPENSSL_WALL" "" "" "" "" "$M_OPENSSL (exit $rc): $(tail -n 1 "$out.openssl")"
}

# ------------------------------------------- archive and crypto floor --
# `uca ceremony --archive`: the whole plan into one tar file, timed like the
# directory runs, its output checked (every certificate a member, a sample
# extracted and verified). Sets A_WALL, A_ISSUE, A_RATE, A_ISSUE_RATE,
# A_RSS and A_CHECK.
archive_run() { # COUNT RUN
    local count=$1 plan out t0 t1 rc members i name d
    plan=$(plan_for "$count")
    out="$WORK/uca-archive-$count-$2"
    sync
    wait_quiet
    t0=$(now)
    rc=0
    /usr/bin/time -f '%e %M %U %S' -o "$out.time" \
        "$UCA" ceremony "$plan" --out "$out" --archive "$out.tar" --json >"$out.json" 2>"$out.err" || rc=$?
    t1=$(now)
    if [ "$rc" -ne 0 ]; then
        cat "$out.err" >&2
        die "uca ceremony --archive of $count certificates failed (exit $rc)"
    fi
    A_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    A_RATE=$(rate "$count" "$A_WALL")
    read -r _ A_RSS _ _ < <(tail -n 1 "$out.time")
    A_ISSUE=$(grep -o '"seconds":[0-9.]*' "$out.json" | cut -d: -f2 || true)
    A_ISSUE=$(awk -v s="${A_ISSUE:-0}" 'BEGIN { printf "%.3f", s }')
    A_ISSUE_RATE=$(rate "$count" "$A_ISSUE")
    members=$(tar -tf "$out.tar" | grep -c '/cert\.pem$' || true)
    [ "$members" -eq "$count" ] || die "the archive holds $members cert.pem members, not $count"
    d="$WORK/archive-sample"
    mkdir -p "$d"
    local ok=0 total=0
    for i in $(sample_indices "$count"); do
        name=$(name_of "$i")
        tar -xf "$out.tar" -C "$d" "certs/$name" || die "cannot extract certs/$name from the archive"
        total=$((total + 1))
        if openssl verify -CAfile "$out/ca/ca.pem" -purpose sslserver "$d/certs/$name/cert.pem" >/dev/null 2>&1 &&
            [ "$(stat -c %a "$d/certs/$name/key.pem")" = 600 ] &&
            [ "$(openssl x509 -in "$d/certs/$name/cert.pem" -pubkey -noout)" = "$(openssl pkey -in "$d/certs/$name/key.pem" -pubout)" ]; then
            ok=$((ok + 1))
        fi
    done
    [ "$ok" -eq "$total" ] || die "archive sample: only $ok of $total extracted certificates verify with their 0600 key"
    A_CHECK="$members members, $ok/$total extracted+verified"
    rm -f "$out.tar"
}

# The crypto floor: the same number of P-256 leaves signed on every core by
# rcgen and ring alone. Sets CF_RATE (empty when it could not run).
crypto_floor_run() { # COUNT
    CF_RATE=""
    [ -n "$FLOOR_BIN" ] || return 0
    wait_quiet
    local line
    line=$("$FLOOR_BIN" "$1" "$NCPU") || return 0
    CF_RATE=$(echo "$line" | sed -n 's/.*= \([0-9]*\)\/s.*/\1/p')
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "crypto floor" "$1" "$(echo "$line" | awk '{ print $4 }')" "$CF_RATE" "" "" "" "rcgen+ring, $NCPU threads, no files"
}

# The size of the uca binary once stripped (a copy: the benchmarked binary
# is left alone). Sets BIN_BYTES (empty when strip is missing or fails).
# The static binary ./install.sh builds: musl when the target and musl-gcc
# are there (install.sh's first choice), else glibc with +crt-static. Sets
# STATIC_BYTES and STATIC_ROUTE (empty when it could not be built).
static_size() {
    STATIC_BYTES=""
    STATIC_ROUTE=""
    have cargo || return 0
    local arch target dir
    arch=$(uname -m)
    dir="${CARGO_TARGET_DIR:-$REPO/target}"
    # As install.sh: add the musl target and musl-gcc when they are missing.
    if [ "$INSTALL" -eq 1 ]; then
        rustup target list --installed 2>/dev/null | grep -x "$arch-unknown-linux-musl" >/dev/null ||
            rustup target add "$arch-unknown-linux-musl" >/dev/null 2>&1 || true
        have musl-gcc || install_tool musl-tools || true
    fi
    if rustup target list --installed 2>/dev/null | grep -x "$arch-unknown-linux-musl" >/dev/null &&
        have musl-gcc; then
        target="$arch-unknown-linux-musl"
        STATIC_ROUTE="musl"
        echo "==> cargo build --release --target $target (the static binary install.sh builds)" >&2
        cargo build --release --target "$target" >"$WORK/build-static.log" 2>&1 || return 0
    else
        target="$arch-unknown-linux-gnu"
        STATIC_ROUTE="glibc +crt-static"
        echo "==> RUSTFLAGS=-Ctarget-feature=+crt-static cargo build --release --target $target" >&2
        RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target "$target" \
            >"$WORK/build-static.log" 2>&1 || return 0
    fi
    strip -o "$WORK/uca.static" "$dir/$target/release/uca" 2>/dev/null || return 0
    STATIC_BYTES=$(stat -c %s "$WORK/uca.static")
}

binary_size() {
    BIN_BYTES=""
    have strip || return 0
    strip -o "$WORK/uca.stripped" "$UCA" 2>/dev/null || return 0
    BIN_BYTES=$(stat -c %s "$WORK/uca.stripped")
}

# ---------------------------------------------------------------- main --
wait_after_cleanup
WROTE_CERTS=1
echo "uca benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
note "repo:     $REPO at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
note "uca:      $("$UCA" --version) (copied from $UCA_BIN)"
note "peers:    $(openssl version | cut -d' ' -f1-2)$(have cfssl && echo ", cfssl $(cfssl version | awk '/^Version/ { print $2 }')")$(have mkcert && echo ", mkcert $(mkcert -version 2>&1)")"
note "machine:  $NCPU cores, $(uname -sr), work dir $WORK ($(fstype "$WORK")$(ext4_without_journal "$WORK" && echo ", no journal"))"
note "load:     $(loadavg) (other processes on this machine skew every number)"
echo

echo "== 1. The same certificates with every tool"
note "Every tool: P-256 key, CN + SAN DNS:svcI.internal, serverAuth + clientAuth,"
note "one new directory per certificate with cert.pem and its key, run one tool at a time."
note "uca:   $N certificates, 'uca ceremony' (creates the CA, issues, writes ca/chain too,"
note "       syncs, writes the ledger and a signed manifest, seals); median of $REPEAT runs."
note "peers: $M certificates each ($([ "$JOBS" -eq 1 ] && echo "a one-at-a-time shell loop" || echo "$JOBS at a time with xargs -P")); CA made beforehand, not timed; no sync."
note "       PEER RATES COME FROM $M CERTIFICATES, uca's FROM $N."
note "mkcert cannot set the validity (it gives 825 days) and adds keyEncipherment."
echo
row_header
uca_series "$N" "$REPEAT" 0 "uca"
UCA_N_RATE=$(rate "$N" "$U_MEDIAN")
UCA_N_BUSY=$U_BUSY
# shellcheck disable=SC2059
printf "$ROW_FMT" "uca median" "$N" "$U_MEDIAN" "$UCA_N_RATE" "" "" "" "(best $U_BEST s = $(rate "$N" "$U_BEST")/s)"

declare -A PEER_RATE=()
for tool in "${PEERS[@]}"; do
    peer_run "$tool"
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "$tool" "$M" "$P_WALL" "$(rate "$M" "$P_WALL")" "-" "-" "-" "$P_CHECK"
    if [ "$P_VALID" -eq 1 ]; then PEER_RATE[$tool]=$(awk -v n="$M" -v s="$P_WALL" 'BEGIN { printf "%.3f", n / s }'); fi
done
for tool in openssl cfssl mkcert; do
    [[ " ${PEERS[*]} " == *" $tool "* ]] || note "$tool: not installed, skipped"
done
echo
FASTEST=""
FASTEST_RATE=0
for tool in "${PEERS[@]}"; do
    [ -n "${PEER_RATE[$tool]:-}" ] || continue
    r=${PEER_RATE[$tool]}
    note "$(printf 'uca / %-8s %7.1fx   (uca %s certs/s over %s certificates, %s %.1f certs/s over %s)' \
        "$tool" "$(awk -v u="$UCA_N_RATE" -v p="$r" 'BEGIN { print u / p }')" "$UCA_N_RATE" "$N" "$tool" "$r" "$M")"
    if awk -v r="$r" -v f="$FASTEST_RATE" 'BEGIN { exit !(r > f) }'; then
        FASTEST=$tool
        FASTEST_RATE=$r
    fi
done
echo

echo "== 2. uca at scale"
row_header
uca_series 10000 "$REPEAT" 0 "uca 10k"
U10K_MEDIAN=$U_MEDIAN
U10K_BEST=$U_BEST
U10K_BUSY=$U_BUSY
U10K_OUT=$R_OUT
# shellcheck disable=SC2059
printf "$ROW_FMT" "uca 10k median" 10000 "$U_MEDIAN" "$(rate 10000 "$U_MEDIAN")" "" "" "" "(best $U_BEST s = $(rate 10000 "$U_BEST")/s)"
FLOOR_UCA_LAYOUT=""
run_floor
echo
U100K_RSS=""
if [ "$RUN_100K" -eq 1 ]; then
    R_RSS_ISSUE=""
    row_header
    uca_series 100000 1 1 "uca 100k"
    U100K_RSS=$U_RSS
    U100K_WALL=$U_MEDIAN
    U100K_OUT=$R_OUT
else
    note "100,000-certificate run skipped (--quick)"
fi
U1M_RSS=""
if [ "$MILLION" -eq 1 ]; then
    R_RSS_ISSUE=""
    row_header
    uca_series 1000000 1 1 "uca 1M"
    U1M_RSS=$U_RSS
    U1M_WALL=$U_MEDIAN
    million_seal_check "$R_OUT"
fi
echo

ARCHIVE_N=$((RUN_100K == 1 ? 100000 : 10000))
echo "== 2b. One archive instead of directories, beside the crypto floor"
note "uca ceremony --archive FILE: the same plan, its $ARCHIVE_N certificates' files as one tar"
note "stream (keys 0600 inside). The crypto floor signs as many leaves with rcgen and ring alone."
row_header
# Like the directory runs, the median of REPEAT runs: one run alone swings
# with the writeback the 100,000-directory run before it left behind.
A_ISSUES=()
A_WALLS=()
for ((a = 1; a <= REPEAT; a++)); do
    archive_run "$ARCHIVE_N" "$a"
    # shellcheck disable=SC2059
    printf "$ROW_FMT" "uca --archive #$a" "$ARCHIVE_N" "$A_WALL" "$A_RATE" "" "" "$(mib "$A_RSS") MiB" "$A_CHECK; issuing $A_ISSUE s"
    A_ISSUES+=("$A_ISSUE")
    A_WALLS+=("$A_WALL")
done
A_ISSUE=$(median "${A_ISSUES[@]}")
A_ISSUE_RATE=$(rate "$ARCHIVE_N" "$A_ISSUE")
A_WALL=$(median "${A_WALLS[@]}")
A_RATE=$(rate "$ARCHIVE_N" "$A_WALL")
# shellcheck disable=SC2059
printf "$ROW_FMT" "archive median" "$ARCHIVE_N" "$A_WALL" "$A_RATE" "" "" "" "median of $REPEAT"
note "    (issuing phase as uca reports it, median of $REPEAT: $A_ISSUE s = $A_ISSUE_RATE certs/s; the wall time adds the root, plan checks and the seal)"
crypto_floor_run "$ARCHIVE_N"
echo

echo "== 3. Verification at scale, and the binary"
row_header
if [ "$RUN_100K" -eq 1 ]; then
    verify_check_run "$U100K_OUT" 100000
else
    verify_check_run "$U10K_OUT" 10000
fi
binary_size
static_size
if [ -n "$STATIC_BYTES" ]; then
    note "static uca binary ($STATIC_ROUTE, as ./install.sh builds it): $STATIC_BYTES bytes stripped"
else
    note "static uca binary: could not be built (see $WORK/build-static.log)"
fi
if [ -n "$BIN_BYTES" ]; then
    note "uca binary: $(stat -c %s "$UCA") bytes as built, $BIN_BYTES bytes stripped (strip -o of a copy)"
else
    note "uca binary: $(stat -c %s "$UCA") bytes as built; strip (binutils) missing or failed, stripped size not measured"
fi
echo

echo "== Goals"
if [ "$U10K_BUSY" -ge 25 ] || [ "$UCA_N_BUSY" -ge 25 ]; then
    note "WARNING: the machine was busy: other processes used ${UCA_N_BUSY}% of the CPU during uca's $N-certificate"
    note "runs and ${U10K_BUSY}% during its 10,000-certificate runs; uca's numbers below are understated."
fi
RESULT=0
goal() { # PASS|FAIL|SKIP TEXT
    echo "  [$1] $2"
    [ "$1" != FAIL ] || RESULT=1
}
at_least() { awk -v v="$1" -v g="$2" 'BEGIN { exit !(v >= g) }' && echo PASS || echo FAIL; }
at_most() { awk -v v="$1" -v g="$2" 'BEGIN { exit !(v <= g) }' && echo PASS || echo FAIL; }
U10K_RATE=$(rate 10000 "$U10K_MEDIAN")

# 1. Bulk to files within 1.25x the file-system floor.
if [ -n "$FLOOR_UCA_LAYOUT" ]; then
    ratio=$(awk -v u="$U10K_MEDIAN" -v f="$FLOOR_UCA_LAYOUT" 'BEGIN { printf "%.2f", u / f }')
    goal "$(at_most "$ratio" 1.25)" "uca / file-system floor at 10,000 certificates <= 1.25: ${ratio}x (uca median $U10K_MEDIAN s = $U10K_RATE certs/s, best $U10K_BEST s; floor median $FLOOR_UCA_LAYOUT s for the same 4 files a directory)"
elif [ "$FLOOR" -eq 0 ]; then
    goal SKIP "uca / file-system floor at 10,000 certificates <= 1.25: floor not measured (--no-floor); uca median $U10K_MEDIAN s"
else
    goal FAIL "uca / file-system floor at 10,000 certificates <= 1.25: the floor program could not be built (cc); uca median $U10K_MEDIAN s"
fi
# 2. A streamed archive beyond the floor, next to the crypto floor.
if [ -n "$CF_RATE" ]; then
    cf_text="crypto floor $CF_RATE certs/s, so uca issues at $(awk -v a="$A_ISSUE_RATE" -v c="$CF_RATE" 'BEGIN { printf "%.0f", 100 * a / c }')% of it"
else
    cf_text="crypto floor not measured (examples/crypto_floor.rs needs cargo)"
fi
# Judged on the issuing phase (signing and writing into the archive, as uca
# times it), the rate comparable with the crypto floor's loop; the whole
# ceremony (plan checks, root, seal) is printed beside it.
goal "$(at_least "$A_ISSUE_RATE" 25000)" "archive (--archive) >= 25,000 certs/s on $NCPU cores: $A_ISSUE_RATE certs/s issuing $ARCHIVE_N into the archive ($A_ISSUE s; the whole ceremony with plan checks, root and seal: $A_RATE certs/s, $A_WALL s); $cf_text"
# 3. Flat memory.
if [ -n "$U100K_RSS" ]; then
    if [ "$U100K_RSS" -lt 65536 ]; then g=PASS; else g=FAIL; fi
    goal "$g" "peak RSS for 100,000 certificates < 64 MiB: $(mib "$U100K_RSS") MiB ($U100K_RSS KiB, /usr/bin/time; that run took $U100K_WALL s = $(rate 100000 "$U100K_WALL") certs/s)"
else
    goal SKIP "peak RSS for 100,000 certificates < 64 MiB: not measured (--quick)"
fi
if [ -n "$U1M_RSS" ]; then
    if [ "$U1M_RSS" -lt 65536 ]; then g=PASS; else g=FAIL; fi
    goal "$g" "peak RSS for 1,000,000 certificates < 64 MiB: $(mib "$U1M_RSS") MiB ($U1M_RSS KiB, /usr/bin/time; that run took $U1M_WALL s = $(rate 1000000 "$U1M_WALL") certs/s)"
    if [ "$M_VERIFY_RSS" -lt 65536 ]; then g=PASS; else g=FAIL; fi
    goal "$g" "peak RSS of uca verify --manifest over 1,000,000 certificates < 64 MiB: $(mib "$M_VERIFY_RSS") MiB ($M_VERIFY_RSS KiB, $M_VERIFY_WALL s)"
    goal "$M_OPENSSL" "stock OpenSSL verifies the 1,000,000-certificate seal with the manifest's verify_with ($M_OPENSSL_WALL s): cd ca && $M_OPENSSL_COMMAND"
else
    goal SKIP "peak RSS for 1,000,000 certificates < 64 MiB: not measured (needs --million: ~26 GB of disk, many minutes)"
fi
# 4. Peers and size.
if [ -z "$FASTEST" ]; then
    goal FAIL ">= 50x the fastest peer in the same run: no peer produced valid certificates, nothing to compare"
else
    ratio=$(awk -v u="$U10K_RATE" -v p="$FASTEST_RATE" 'BEGIN { printf "%.1f", u / p }')
    goal "$(at_least "$ratio" 50)" ">= 50x the fastest peer in the same run: ${ratio}x (uca $U10K_RATE certs/s, median over 10,000; fastest peer $FASTEST $(printf '%.1f' "$FASTEST_RATE") certs/s over $M)"
    note "       at -n $N uca's median rate was $(awk -v u="$UCA_N_RATE" -v p="$FASTEST_RATE" 'BEGIN { printf "%.1f", u / p }')x that peer's"
fi
if [ -n "$STATIC_BYTES" ]; then
    if [ "$STATIC_BYTES" -lt 5000000 ]; then g=PASS; else g=FAIL; fi
    goal "$g" "static release binary < 5 MB: $(awk -v b="$STATIC_BYTES" 'BEGIN { printf "%.2f", b / 1e6 }') MB ($STATIC_BYTES bytes, $STATIC_ROUTE, as ./install.sh builds it; dynamic ${BIN_BYTES:-?} bytes)"
elif [ -n "$BIN_BYTES" ]; then
    goal FAIL "static release binary < 5 MB: the static build failed; the dynamic one is $(awk -v b="$BIN_BYTES" 'BEGIN { printf "%.2f", b / 1e6 }') MB ($BIN_BYTES bytes)"
else
    goal FAIL "stripped release binary < 5 MB: not measured (no working strip; install binutils)"
fi
# 5. Verification at scale.
if [ "$VC_COUNT" -eq 100000 ]; then g_of() { at_least "$1" 20000; }; else g_of() { echo SKIP; }; fi
scope="over the 100,000-certificate run's output"
[ "$VC_COUNT" -eq 100000 ] || scope="over 10,000 only (--quick; the goal is over 100,000)"
goal "$(g_of "$V_RATE")" "uca verify --manifest >= 20,000 certs/s: $V_RATE certs/s ($V_WALL s $scope)"
goal "$(g_of "$C_RATE")" "uca check >= 20,000 certs/s: $C_RATE certs/s ($C_WALL s $scope)"
echo
if [ "$KEEP" -eq 0 ]; then
    echo "removing $WORK ..."
fi
if [ "$STRICT" -eq 1 ]; then exit "$RESULT"; fi
exit 0
