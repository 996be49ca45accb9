#!/usr/bin/env bash
# Builds the patched QEMU: Debian's QEMU 10.0.x source package, Debian's own patches
# applied, then our new files (qemu/files/) and our patch series (qemu/patches/series).
#
#   qemu/build-qemu.sh [build]   fetch (cached), prepare the tree, configure, build
#   qemu/build-qemu.sh fetch     only download (and cache) the source package
#   qemu/build-qemu.sh worktree  make a git-initialised tree to edit QEMU in
#   qemu/build-qemu.sh export    regenerate qemu/patches/ from the worktree's commits
#
# Environment:
#   MIXEDVM_BUILD     the Meson build directory (default: <repo>/build); QEMU goes in
#                     $MIXEDVM_BUILD/qemu-src (source) and $MIXEDVM_BUILD/qemu (objects)
#   MIXEDVM_CACHE     download cache (default: ~/.cache/mixedvm)
#   MIXEDVM_QEMU_SRC  build this source tree instead (e.g. the worktree) as it is
#   PKG_CONFIG_PATH   must let pkg-config find mixedvm.pc (tools/mixedvm sets it)
#
# Step lines start with "==> " so tools/mixedvm can show progress; errors start with
# "build-qemu: error: " and name what failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${MIXEDVM_BUILD:-$root/build}
cache=${MIXEDVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mixedvm}/qemu-source
src=$build/qemu-src
obj=$build/qemu
worktree=$build/qemu-work
qemu_series=10.0

die() { echo "build-qemu: error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# The newest cached .dsc of QEMU $qemu_series.x, or nothing.
cached_dsc() {
    { ls "$cache"/qemu_"$qemu_series".*.dsc 2>/dev/null || true; } | sort -V | tail -n 1
}

# Debian ships QEMU 10.0.x in bookworm-backports and in trixie. Some mirrors lack the
# backports .dsc, so both are listed and every candidate version is tried, newest first.
ensure_deb_src() {
    local list=/etc/apt/sources.list.d/mixedvm-qemu-src.sources
    [ -f "$list" ] && return 0
    [ "$(id -u)" = 0 ] || die "need root to add deb-src entries for QEMU $qemu_series ($list)"
    cat > "$list" <<'EOF'
# Added by mixedvm qemu/build-qemu.sh: source of QEMU 10.0.x
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update -qq || die "apt-get update failed: cannot reach the Debian mirror (no network?)"
}

fetch() {
    local dsc
    dsc=$(cached_dsc)
    if [ -n "$dsc" ]; then
        step "QEMU source: cached $(basename "$dsc")"
        return 0
    fi
    command -v dpkg-source > /dev/null || die "dpkg-source missing: run tools/mixedvm setup"
    ensure_deb_src
    local versions
    versions=$(apt-cache showsrc qemu 2>/dev/null | awk -v s="1:$qemu_series." \
        '/^Version: / && index($2, s) == 1 { print $2 }' | sort -V -r -u)
    if [ -z "$versions" ]; then
        apt-get update -qq || die "apt-get update failed: cannot reach the Debian mirror (no network?)"
        versions=$(apt-cache showsrc qemu 2>/dev/null | awk -v s="1:$qemu_series." \
            '/^Version: / && index($2, s) == 1 { print $2 }' | sort -V -r -u)
    fi
    [ -n "$versions" ] || die "no QEMU $qemu_series.x source package in the apt sources"
    mkdir -p "$cache"
    local v
    for v in $versions; do
        step "QEMU source: downloading qemu=$v"
        if (cd "$cache" && apt-get source --download-only -qq "qemu=$v" > /dev/null 2>&1); then
            dsc=$(cached_dsc)
            [ -n "$dsc" ] && { step "QEMU source: cached $(basename "$dsc")"; return 0; }
        fi
        echo "    qemu=$v could not be downloaded, trying the next version" >&2
    done
    die "could not download any QEMU $qemu_series.x source package (no network?)"
}

copy_own_files() {
    [ ! -d "$here/files" ] || cp -a "$here/files/." "$1/"
}

series_patches() {
    grep -v -e '^#' -e '^[[:space:]]*$' "$here/patches/series" || true
}

# Everything the prepared tree depends on, hashed: the source package, the series, the
# patches and our files (names and contents).
inputs_hash() {
    {
        basename "$1"
        cat "$here/patches/series"
        local p
        for p in $(series_patches); do cat "$here/patches/$p"; done
        [ ! -d "$here/files" ] || (cd "$here/files" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
    } | sha256sum | cut -d' ' -f1
}

apply_series() {
    local tree=$1 p n=0
    for p in $(series_patches); do
        [ -f "$here/patches/$p" ] || die "qemu/patches/series names $p, which does not exist"
        if ! patch -d "$tree" -p1 --batch --forward --quiet < "$here/patches/$p" > "$build/patch.log" 2>&1; then
            cat "$build/patch.log" >&2
            die "patch $p does not apply to $(basename "$(cached_dsc)" .dsc)"
        fi
        n=$((n + 1))
    done
    step "applied $n patches"
}

# Prepares $src. A changed input re-extracts into a staging tree and syncs it over $src
# by content, so files that did not change keep their mtimes and ninja rebuilds little.
prepare() {
    local dsc hash stage
    dsc=$(cached_dsc)
    hash=$(inputs_hash "$dsc")
    if [ -f "$src/.mixedvm-inputs" ] && [ "$(cat "$src/.mixedvm-inputs")" = "$hash" ]; then
        step "QEMU tree: up to date"
        return 0
    fi
    step "QEMU tree: extracting $(basename "$dsc" .dsc) with Debian's patches"
    stage=$build/qemu-src.new
    rm -rf "$stage"
    mkdir -p "$build"
    dpkg-source --no-check -q -x "$dsc" "$stage" > /dev/null 2>&1 || die "dpkg-source could not extract $dsc"
    copy_own_files "$stage"
    apply_series "$stage"
    if [ -d "$src" ]; then
        rsync -rc --delete --exclude=.mixedvm-inputs "$stage/" "$src/"
        rm -rf "$stage"
    else
        mv "$stage" "$src"
    fi
    echo "$hash" > "$src/.mixedvm-inputs"
}

configure_args() {
    local tree=$1
    echo "$tree/configure" --target-list=x86_64-softmmu \
        --without-default-features --enable-kvm --enable-tcg --enable-mixedvm \
        --enable-plugins \
        --disable-docs --disable-fdt --disable-download --disable-install-blobs \
        --python=/usr/bin/python3 \
        --firmwarepath=/usr/share/qemu:/usr/share/seabios
}

configure() {
    local tree=$1 args stamp
    args=$(configure_args "$tree")
    pkg-config --exists mixedvm || die "pkg-config cannot find mixedvm.pc (PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}); build the library first (tools/mixedvm build)"
    # QEMU's meson caches what pkg-config said: a changed mixedvm.pc (a new
    # dependency of the library) must reconfigure.
    stamp="$args $(pkg-config --cflags --libs mixedvm)"
    if [ -f "$obj/build.ninja" ] && [ -f "$obj/.mixedvm-configure" ] &&
       [ "$(cat "$obj/.mixedvm-configure")" = "$stamp" ]; then
        return 0
    fi
    step "configuring QEMU (x86_64-softmmu, KVM + TCG)"
    mkdir -p "$obj"
    (cd "$obj" && $args > "$obj/configure.log" 2>&1) || {
        tail -n 30 "$obj/configure.log" >&2
        die "QEMU configure failed; full log: $obj/configure.log"
    }
    echo "$stamp" > "$obj/.mixedvm-configure"
}

# A binary run from its build tree resolves every firmware directory inside
# <build>/qemu-bundle (get_relocated_path in util/cutils.c), so Debian's SeaBIOS
# and option ROMs are linked there. Users never pass -L.
link_firmware() {
    local d
    for d in /usr/share/qemu /usr/share/seabios; do
        [ -d "$d" ] || die "$d is missing: install seabios and qemu-system-data (tools/mixedvm setup)"
        mkdir -p "$obj/qemu-bundle$(dirname "$d")"
        ln -sfn "$d" "$obj/qemu-bundle$d"
    done
}

compile() {
    step "compiling QEMU"
    # TCG plugins too: QEMU's examples (contrib/plugins, tests/tcg/plugins) and
    # ours, contrib/plugins/libmixedvm.so (docs/mixed.md, "Analysis").
    ninja -C "$obj" qemu-system-x86_64 contrib-plugins test-plugins || die "QEMU build failed"
    link_firmware
    step "built $obj/qemu-system-x86_64"
}

cmd_build() {
    if [ -n "${MIXEDVM_QEMU_SRC:-}" ]; then
        step "QEMU tree: using $MIXEDVM_QEMU_SRC as it is"
        copy_own_files "$MIXEDVM_QEMU_SRC"
        configure "$MIXEDVM_QEMU_SRC"
    else
        fetch
        prepare
        configure "$src"
    fi
    compile
}

# A git tree for editing QEMU: commit 1 is Debian's tree, commit 2 our own files,
# then one commit per patch of the series. See docs/qemu-patches.md.
cmd_worktree() {
    fetch
    [ -e "$worktree" ] && die "$worktree exists; remove it first or keep working in it"
    local dsc p
    dsc=$(cached_dsc)
    dpkg-source --no-check -q -x "$dsc" "$worktree" > /dev/null 2>&1 || die "dpkg-source failed"
    cd "$worktree"
    git init -q
    git add -A && git -c user.name=mixedvm -c user.email=mixedvm@localhost \
        commit -q -m "Debian $(basename "$dsc" .dsc), Debian patches applied"
    git tag mixedvm-base
    copy_own_files .
    git add -A && git -c user.name=mixedvm -c user.email=mixedvm@localhost \
        commit -q --allow-empty -m "mixedvm: our own files (edit them in qemu/files/)"
    git tag mixedvm-files
    for p in $(series_patches); do
        git -c user.name=mixedvm -c user.email=mixedvm@localhost am -q "$here/patches/$p" ||
            die "patch $p does not apply (git am); resolve in $worktree"
    done
    step "worktree ready: $worktree (edit, commit, then: qemu/build-qemu.sh export)"
}

cmd_export() {
    [ -d "$worktree/.git" ] || die "no worktree at $worktree; run: qemu/build-qemu.sh worktree"
    cd "$worktree"
    local touched
    touched=$(git diff --name-only mixedvm-files HEAD | while read -r f; do
        [ -e "$here/files/$f" ] && echo "$f"; done || true)
    [ -z "$touched" ] || die "commits change our own files ($touched): edit them in qemu/files/ instead"
    rm -f "$here"/patches/*.patch
    git format-patch -q --no-signature --zero-commit -N -o "$here/patches" mixedvm-files..HEAD
    (cd "$here/patches" && ls *.patch) > "$here/patches/series"
    step "exported $(wc -l < "$here/patches/series") patches to qemu/patches/"
}

case "${1:-build}" in
    build) cmd_build ;;
    fetch) fetch ;;
    worktree) cmd_worktree ;;
    export) cmd_export ;;
    *) die "unknown command '$1' (build, fetch, worktree, export)" ;;
esac
