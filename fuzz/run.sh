#!/usr/bin/env bash
# Runs every cargo-fuzz target of uca for SECONDS each (default 30):
#
#   fuzz/run.sh [SECONDS]
#
# Targets (fuzz/fuzz_targets/):
#   names    San::parse, San::for_name, dns_name, ip/email/uri, SanRule::parse
#            + sans_for, Permit::parse: never panic, one-line errors, every
#            accepted SAN encodes and round-trips
#   plan     Plan::load (ceremony and under an existing CA) and NamePattern,
#            with the first items of an accepted plan expanded
#   csr_pem  sign::parse_csr on raw DER and on every PEM block; an accepted
#            CSR is turned into leaf parameters and really signed
#   pem      x509::parse_blocks, read_certificates, name constraints, PKCS#8
#            keys and the whole `uca inspect` description (text and JSON)
#
# Needs the nightly toolchain and cargo-fuzz (test.sh installs both when it
# runs this, i.e. with UCA_FUZZ_SECONDS set):
#   rustup toolchain install nightly --profile minimal
#   cargo install cargo-fuzz --locked
#
# Each target's corpus grows in fuzz/corpus/TARGET (not committed) and is
# seeded on every run from fixtures/bad (hostile inputs), fixtures/plans and
# fuzz/seeds. A crash, a panic, a leak or a timeout is saved under
# fuzz/artifacts/TARGET/ and makes this script fail; reproduce one with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# then add the input to fixtures/bad (a case in the matching manifest).
#
# A longer run (e.g. an hour per target, on every core):
#   fuzz/run.sh 3600
#   cd fuzz && cargo +nightly fuzz run plan -- -max_total_time=3600 -fork=$(nproc)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${1:-30}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;;
esac
toolchain="${UCA_FUZZ_TOOLCHAIN:-nightly}"
targets=(names plan csr_pem pem)

command -v cargo-fuzz >/dev/null || {
    echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
}
rustup run "$toolchain" rustc --version >/dev/null 2>&1 || {
    echo "fuzz/run.sh: the $toolchain toolchain is missing: rustup toolchain install $toolchain --profile minimal" >&2
    exit 1
}

# Seed directories are read, never written: libFuzzer writes new inputs to the
# first directory given, fuzz/corpus/TARGET.
seeds() {
    case "$1" in
        names) echo "seeds/names" ;;
        plan) echo "../fixtures/bad/plans ../fixtures/plans" ;;
        csr_pem) echo "../fixtures/bad/csr ../fixtures/bad/pem" ;;
        pem) echo "../fixtures/bad/pem ../fixtures/bad/csr" ;;
    esac
}

start=$SECONDS
echo "==> cargo +$toolchain fuzz build (${targets[*]})"
cargo "+$toolchain" fuzz build
echo "    ($((SECONDS - start)) s)"

failed=()
mkdir -p logs
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    t0=$SECONDS
    echo "==> $t for ${seconds}s (log: fuzz/logs/$t.log)"
    # shellcheck disable=SC2046 # the seed list is meant to split
    if ! cargo "+$toolchain" fuzz run "$t" "corpus/$t" $(seeds "$t") -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -close_fd_mask=1 -print_final_stats=1 >"logs/$t.log" 2>&1; then
        failed+=("$t")
        grep -E -A12 'panicked|==[0-9]+== ERROR' "logs/$t.log" | head -40 >&2 || true
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "logs/$t.log" | tail -1 || true)
    echo "    ${runs:-0} inputs, ${cov:-cov: ?}, $((SECONDS - t0)) s"
done
echo "fuzz/run.sh: ${#targets[@]} targets, ${seconds}s each, $((SECONDS - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
