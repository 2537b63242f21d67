#!/usr/bin/env bash
# Builds a static uca binary and installs it with its man pages and shell
# completions.
#
#   ./install.sh                      # into $HOME/.local
#   ./install.sh --prefix /usr/local  # anywhere else
#
# Static means the binary runs on any Linux of the same architecture, with no
# shared libraries to match: it can be copied onto an offline machine where
# the CA lives. The musl target is preferred (fully static); when it cannot be
# had (no rustup target, no musl-gcc), glibc is linked statically instead.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./install.sh [--prefix DIR]

Builds a static release binary of uca and installs
  DIR/bin/uca
  DIR/share/man/man1/uca*.1
  DIR/share/bash-completion/completions/uca
  DIR/share/zsh/site-functions/_uca
  DIR/share/fish/vendor_completions.d/uca.fish
DIR defaults to $HOME/.local.
EOF
}

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

usage_error() {
    usage >&2
    echo "install.sh: error: $*" >&2
    exit 2
}

prefix="${HOME:?HOME is not set; pass --prefix DIR}/.local"
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix)
            [ $# -ge 2 ] && [ -n "$2" ] || usage_error "--prefix needs a directory"
            prefix="$2"
            shift 2
            ;;
        --prefix=*)
            prefix="${1#--prefix=}"
            [ -n "$prefix" ] || usage_error "--prefix needs a directory"
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

# Resolve the prefix before leaving the caller's directory.
mkdir -p "$prefix" || die "cannot create $prefix"
prefix="$(cd "$prefix" && pwd -P)"
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v cargo >/dev/null || die "cargo not found; install Rust from https://rustup.rs first"

# shellcheck source=scripts/apt.sh
source scripts/apt.sh

arch="$(uname -m)"
musl_target="${arch}-unknown-linux-musl"
gnu_target="${arch}-unknown-linux-gnu"

have_musl_target() {
    command -v rustup >/dev/null || return 1
    if rustup target list --installed 2>/dev/null | grep -qx "$musl_target"; then
        return 0
    fi
    echo "==> rustup target add $musl_target"
    rustup target add "$musl_target"
}

# ring compiles C and assembly, so the musl build needs a musl C compiler.
have_musl_gcc() {
    command -v musl-gcc >/dev/null || command -v "${arch}-linux-musl-gcc" >/dev/null || apt_install musl-tools
}

if have_musl_target && have_musl_gcc; then
    route="musl ($musl_target)"
    target="$musl_target"
    echo "==> cargo build --release --locked --target $target"
    cargo build --release --locked --target "$target"
else
    echo "install.sh: note: the musl target or musl-gcc is not available; linking glibc statically instead" >&2
    route="glibc, statically linked ($gnu_target, +crt-static)"
    target="$gnu_target"
    echo "==> RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target $target"
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target"
fi

target_dir="$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[ -n "$target_dir" ] || target_dir=target
bin="$target_dir/$target/release/uca"
[ -x "$bin" ] || die "the build did not produce $bin"

# Refuse to install a binary that needs shared libraries.
if ! command -v ldd >/dev/null && ! command -v file >/dev/null; then
    die "neither ldd nor file is installed, so the binary cannot be checked to be static"
fi
static=no
ldd_out="$(ldd "$bin" 2>&1 | sed "s/^[[:space:]]*//" || true)"
file_out="$(file -L "$bin" 2>/dev/null || true)"
if printf '%s\n' "$ldd_out" | grep -qE 'not a dynamic executable|statically linked'; then
    static=yes
fi
if printf '%s\n' "$file_out" | grep -qE 'statically linked|static-pie linked'; then
    static=yes
fi
if printf '%s\n' "$ldd_out" | grep -q '=>'; then
    static=no
fi
echo "==> static check of $bin"
[ -n "$ldd_out" ] && echo "    ldd:  $ldd_out"
[ -n "$file_out" ] && echo "    file: $file_out"
[ "$static" = yes ] || die "$bin is not statically linked (see above); not installing it"

"$bin" --version >/dev/null || die "$bin does not run"

written=()
put() { # put MODE SOURCE DEST
    install -m "$1" "$2" "$3"
    written+=("$3")
}

install -d "$prefix/bin" "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
    "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"

put 0755 "$bin" "$prefix/bin/uca"

shopt -s nullglob
pages=(man/*.1)
[ ${#pages[@]} -gt 0 ] || die "no man pages in man/ (regenerate them with: UCA_UPDATE_MAN=1 cargo test --test man)"
for page in "${pages[@]}"; do
    put 0644 "$page" "$prefix/share/man/man1/$(basename "$page")"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$prefix/bin/uca" completions bash >"$tmp/uca"
"$prefix/bin/uca" completions zsh >"$tmp/_uca"
"$prefix/bin/uca" completions fish >"$tmp/uca.fish"
put 0644 "$tmp/uca" "$prefix/share/bash-completion/completions/uca"
put 0644 "$tmp/_uca" "$prefix/share/zsh/site-functions/_uca"
put 0644 "$tmp/uca.fish" "$prefix/share/fish/vendor_completions.d/uca.fish"

echo
echo "installed $("$prefix/bin/uca" --version), built for $route:"
for f in "${written[@]}"; do
    echo "  $f"
done
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not on your PATH; add it, or run $prefix/bin/uca" ;;
esac
