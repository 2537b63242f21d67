# shellcheck shell=bash
# Sourced by install.sh, test.sh and bench/bench.sh.
#
# apt_install PACKAGE...: installs Debian packages when this machine can
# (root, or password-less sudo), running apt-get update once per script.
# Returns non-zero when it cannot; the caller says what is missing and why.
_apt_updated=0
apt_install() {
    command -v apt-get >/dev/null || return 1
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
        sudo=(sudo -n)
    fi
    if [ "$_apt_updated" -eq 0 ]; then
        echo "==> apt-get update" >&2
        "${sudo[@]}" apt-get update -qq >&2 || return 1
        _apt_updated=1
    fi
    echo "==> apt-get install -y $*" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null || return 1
}
