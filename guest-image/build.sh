#!/usr/bin/env bash
# guest-image/build.sh: builds the podvm guest: a minimal Linux 6.1 kernel
# (vmlinux ELF with the PVH entry, patches/*.patch applied; cached under
# ${PODVM_CACHE_DIR:-/var/cache/podvm}/kernel/<key>/) and an initramfs whose
# /init is the static musl podvm-agent. Results go to --out DIR
# (default <repo>/target/guest): vmlinux, initramfs.cpio.gz.
#
# Usage: guest-image/build.sh [--out DIR] [--kernel-only | --check]
#   --out DIR       where vmlinux and initramfs.cpio.gz are put
#   --kernel-only   build (or reuse) the cached kernel only, copy vmlinux to DIR
#   --check         print whether the kernel for the current inputs is cached;
#                   exit 0 if it is, 1 if not; builds nothing
# Environment: PODVM_CACHE_DIR (default /var/cache/podvm), CARGO_TARGET_DIR.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
FRAGMENT="$SCRIPT_DIR/kernel.config"
# Patches applied (in name order, patch -p1) to the extracted kernel source.
PATCH_DIR="$SCRIPT_DIR/patches"
CACHE_DIR="${PODVM_CACHE_DIR:-/var/cache/podvm}"
KERNEL_CACHE="$CACHE_DIR/kernel"
KERNEL_PKG="linux-source-6.1"
KERNEL_TARBALL="/usr/src/linux-source-6.1.tar.xz"
MUSL_TARGET="x86_64-unknown-linux-musl"
# Kernel command line the guest expects (printed in the summary; the host adds
# virtio_mmio.device=... entries for its devices). The kernel also has a
# built-in "reboot=t" (see kernel.config) that is prepended to it.
GUEST_CMDLINE="console=ttyS0 panic=-1 random.trust_cpu=on rdinit=/init quiet"

OUT="$REPO/target/guest"
MODE="all"

log() { printf '[guest-image] %s\n' "$*" >&2; }
die() { printf '[guest-image] error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,13p' "$SELF" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out)
            [[ $# -ge 2 && -n "$2" ]] || die "--out needs a directory argument"
            OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#--out=}"; [[ -n "$OUT" ]] || die "--out needs a directory argument"; shift ;;
        --kernel-only) [[ "$MODE" == all ]] || die "--kernel-only and --check exclude each other"; MODE="kernel"; shift ;;
        --check) [[ "$MODE" == all ]] || die "--kernel-only and --check exclude each other"; MODE="check"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# need_cmd CMD PACKAGE: fail naming the Debian package that provides CMD.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found; install the Debian package '$2' (apt-get install $2)"
}
# need_file PATH PACKAGE: same for a file (headers, tarballs).
need_file() {
    [[ -e "$1" ]] || die "'$1' not found; install the Debian package '$2' (apt-get install $2)"
}

sha256_of_stdin() { sha256sum | cut -d' ' -f1; }
human_size() { numfmt --to=iec --suffix=B "$(stat -c %s "$1")"; }

# >>> kernel-build: everything from here to "<<< kernel-build" is part of the
# kernel cache key, so changing how the kernel is built invalidates the cache.

kernel_source_version() {
    need_cmd dpkg-query dpkg
    local v
    v="$(dpkg-query -W -f='${Status} ${Version}' "$KERNEL_PKG" 2>/dev/null || true)"
    [[ "$v" == "install ok installed "* ]] \
        || die "package '$KERNEL_PKG' is not installed (apt-get install $KERNEL_PKG)"
    printf '%s\n' "${v##* }"
}

kernel_key() {
    [[ -f "$FRAGMENT" ]] || die "kernel config fragment missing: $FRAGMENT"
    local version section
    version="$(kernel_source_version)"
    section="$(sed -n '/^# >>> kernel-build/,/^# <<< kernel-build/p' "$SELF")"
    [[ -n "$section" ]] || die "cannot find the kernel-build section markers in $SELF"
    {
        printf 'linux-source: %s\n' "$version"
        printf 'fragment: %s\n' "$(sha256_of_stdin <"$FRAGMENT")"
        printf 'script: %s\n' "$(printf '%s' "$section" | sha256_of_stdin)"
        printf 'patches: %s\n' "$(kernel_patches_digest)"
    } | sha256_of_stdin | cut -c1-16
}

# kernel_patches: the patch files, one per line, in the order they are applied.
kernel_patches() {
    [[ -d "$PATCH_DIR" ]] || return 0
    find "$PATCH_DIR" -maxdepth 1 -type f -name '*.patch' | LC_ALL=C sort
}

# kernel_patches_digest: sha256 over the names and contents of all patches.
kernel_patches_digest() {
    local p
    kernel_patches | while IFS= read -r p; do
        printf '%s %s\n' "$(basename "$p")" "$(sha256_of_stdin <"$p")"
    done | sha256_of_stdin
}

# kernel_apply_patches SRC LOG: apply every patch with patch -p1, failing on
# the first one that does not apply cleanly (no fuzz).
kernel_apply_patches() {
    local src="$1" logf="$2" p
    while IFS= read -r p; do
        log "kernel: applying $(basename "$p")"
        (cd "$src" && patch -p1 --forward --fuzz=0 --no-backup-if-mismatch <"$p") >>"$logf" 2>&1 \
            || { tail -n 20 "$logf" >&2; die "patch $p does not apply to $KERNEL_PKG; full log: $logf"; }
    done < <(kernel_patches)
}

kernel_prereqs() {
    need_file "$KERNEL_TARBALL" "$KERNEL_PKG"
    need_cmd tar tar
    need_cmd xz xz-utils
    need_cmd make make
    need_cmd gcc build-essential
    need_cmd bc bc
    need_cmd bison bison
    need_cmd flex flex
    need_cmd readelf binutils
    need_cmd perl perl
    need_cmd flock util-linux
    need_cmd patch patch
    need_file /usr/include/gelf.h libelf-dev
    need_file /usr/include/openssl/ssl.h libssl-dev
}

KMAKE=(make ARCH=x86_64 KBUILD_BUILD_USER=podvm KBUILD_BUILD_HOST=podvm KBUILD_BUILD_TIMESTAMP=1970-01-01)

# kernel_configure SRC LOG: tinyconfig + fragment, then check that every
# CONFIG_X=value line of the fragment is in .config verbatim and every
# "# CONFIG_X is not set" symbol is off.
kernel_configure() {
    local src="$1" logf="$2"
    log "kernel: make tinyconfig + $(basename "$FRAGMENT")"
    (cd "$src" && "${KMAKE[@]}" tinyconfig \
        && ./scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" \
        && "${KMAKE[@]}" olddefconfig) >>"$logf" 2>&1 \
        || { tail -n 30 "$logf" >&2; die "kernel configuration failed; full log: $logf"; }

    local line sym bad=()
    while IFS= read -r line; do
        if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=.+$ ]]; then
            sym="${BASH_REMATCH[1]}"
            grep -qxF "$line" "$src/.config" \
                || bad+=("$line wanted, got: $(grep -E "^(# )?$sym[= ]" "$src/.config" || echo 'absent')")
        elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            sym="${BASH_REMATCH[1]}"
            if grep -qE "^$sym=" "$src/.config"; then
                bad+=("$sym off wanted, got: $(grep -E "^$sym=" "$src/.config")")
            fi
        fi
    done <"$FRAGMENT"
    if [[ ${#bad[@]} -gt 0 ]]; then
        printf '  %s\n' "${bad[@]}" >&2
        die "${#bad[@]} option(s) of $FRAGMENT did not stick (missing dependency?); config: $src/.config"
    fi
    log "kernel: all options of the fragment are set as asked"
}

# kernel_make SRC LOG: make vmlinux with a progress line every 20 s.
kernel_make() {
    local src="$1" logf="$2" jobs start pid rc=0 now last=0
    jobs="$(nproc)"
    start=$SECONDS
    log "kernel: make -j$jobs vmlinux (log: $logf)"
    (cd "$src" && exec "${KMAKE[@]}" -j"$jobs" vmlinux) >>"$logf" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 2
        now=$SECONDS
        if (( now - last >= 20 )); then
            last=$now
            log "kernel: $(grep -c '^  CC ' "$logf" || true) objects compiled, $(( now - start ))s elapsed"
        fi
    done
    wait "$pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        tail -n 40 "$logf" >&2
        die "kernel build failed (make exit $rc); full log: $logf"
    fi
    if [[ ! -x "$src/usr/gen_init_cpio" ]]; then
        (cd "$src" && "${KMAKE[@]}" usr/gen_init_cpio) >>"$logf" 2>&1 \
            || die "building usr/gen_init_cpio failed; full log: $logf"
    fi
    # PVH entry = the XEN_ELFNOTE_PHYS32_ENTRY note (type 0x12, owner "Xen").
    readelf -nW "$src/vmlinux" | grep -qE '^ +Xen +0x[0-9a-f]+[[:space:]].*\(0x0*12\)' \
        || die "$src/vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); is CONFIG_PVH set?"
    log "kernel: vmlinux built in $(( SECONDS - start ))s"
}

# kernel_ensure KEY: build into $KERNEL_CACHE/KEY unless it is there already.
kernel_ensure() {
    local key="$1" entry="$KERNEL_CACHE/$1"
    if [[ -f "$entry/vmlinux" ]]; then
        log "kernel: cached: $entry"
        return
    fi
    kernel_prereqs
    mkdir -p "$KERNEL_CACHE" 2>/dev/null && [[ -w "$KERNEL_CACHE" ]] \
        || die "kernel cache $KERNEL_CACHE is not writable (run as root or set PODVM_CACHE_DIR)"
    # One builder per key; a second caller waits and then reuses the result.
    exec 9>"$KERNEL_CACHE/$key.lock"
    if ! flock -n 9; then
        log "kernel: another build of $key is running; waiting for it"
        flock 9
    fi
    if [[ -f "$entry/vmlinux" ]]; then
        log "kernel: cached: $entry"
        exec 9>&-
        return
    fi

    local build="$KERNEL_CACHE/build-$key" logf="$KERNEL_CACHE/build-$key.log" start=$SECONDS
    rm -rf "$build" "$entry.tmp"
    : >"$logf"
    mkdir -p "$build"
    log "kernel: building $key from $KERNEL_PKG $(kernel_source_version) in $build"
    log "kernel: extracting $KERNEL_TARBALL"
    tar -xJf "$KERNEL_TARBALL" -C "$build" --strip-components=1 \
        || die "cannot extract $KERNEL_TARBALL into $build"
    kernel_apply_patches "$build" "$logf"
    kernel_configure "$build" "$logf"
    kernel_make "$build" "$logf"

    mkdir -p "$entry.tmp"
    cp "$build/vmlinux" "$entry.tmp/vmlinux"
    cp "$build/.config" "$entry.tmp/config"
    cp "$build/usr/gen_init_cpio" "$entry.tmp/gen_init_cpio"
    cp "$logf" "$entry.tmp/build.log"
    {
        printf 'key: %s\n' "$key"
        printf 'linux-source: %s\n' "$(kernel_source_version)"
        printf 'fragment-sha256: %s\n' "$(sha256_of_stdin <"$FRAGMENT")"
        printf 'patches: %s\n' "$(kernel_patches | xargs -r -n1 basename | tr '\n' ' ')"
        printf 'patches-sha256: %s\n' "$(kernel_patches_digest)"
        printf 'build-seconds: %s\n' "$(( SECONDS - start ))"
        printf 'built: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$entry.tmp/build-info"
    chmod a-w "$entry.tmp"/*
    mv "$entry.tmp" "$entry"
    rm -rf "$build" "$logf"
    exec 9>&-
    log "kernel: cached as $entry ($(( SECONDS - start ))s in all)"
}

# <<< kernel-build

# link_or_copy SRC DST: hardlink when possible (same filesystem), else copy.
link_or_copy() {
    rm -f "$2"
    ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

build_agent() {
    need_cmd cargo "rustup (https://rustup.rs)"
    need_cmd rustup "rustup (https://rustup.rs)"
    need_cmd readelf binutils
    if ! rustup target list --installed | grep -qx "$MUSL_TARGET"; then
        log "agent: rustup target add $MUSL_TARGET"
        rustup target add "$MUSL_TARGET" || die "rustup target add $MUSL_TARGET failed"
    fi
    log "agent: cargo build --release -p podvm-agent --target $MUSL_TARGET"
    (cd "$REPO" && cargo build --release -p podvm-agent --target "$MUSL_TARGET") \
        || die "cargo build of podvm-agent for $MUSL_TARGET failed"
    AGENT_BIN="${CARGO_TARGET_DIR:-$REPO/target}/$MUSL_TARGET/release/podvm-agent"
    [[ -f "$AGENT_BIN" ]] || die "cargo reported success but $AGENT_BIN does not exist"
    # Static (or static-pie): no program interpreter, no DT_NEEDED libraries.
    if readelf -lW "$AGENT_BIN" | grep -q 'INTERP' \
        || readelf -dW "$AGENT_BIN" | grep -q '(NEEDED)'; then
        die "$AGENT_BIN is dynamically linked; the guest has no libc, /init must be static"
    fi
    log "agent: $AGENT_BIN ($(human_size "$AGENT_BIN"), statically linked)"
}

# initramfs_spec AGENT: the gen_init_cpio list for the initramfs.
initramfs_spec() {
    cat <<EOF
# podvm guest initramfs (generated by guest-image/build.sh)
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /proc 0555 0 0
dir /sys 0555 0 0
dir /run 0755 0 0
dir /tmp 1777 0 0
dir /etc 0755 0 0
dir /mnt 0755 0 0
dir /var 0755 0 0
dir /root 0700 0 0
file /init $1 0755 0 0
EOF
}

build_initramfs() {
    local gen="$1" out="$OUT/initramfs.cpio.gz" stamp="$OUT/initramfs.stamp" spec want
    need_cmd gzip gzip
    spec="$(initramfs_spec "$AGENT_BIN")"
    want="$(printf 'agent %s\nspec %s\n' \
        "$(sha256_of_stdin <"$AGENT_BIN")" "$(printf '%s' "$spec" | sha256_of_stdin)")"
    if [[ -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "initramfs: up to date: $out"
        return
    fi
    printf '%s\n' "$spec" >"$OUT/initramfs.list"
    "$gen" "$OUT/initramfs.list" | gzip -9 -n >"$out.tmp" \
        || die "packing the initramfs failed (spec: $OUT/initramfs.list)"
    mv "$out.tmp" "$out"
    printf '%s\n' "$want" >"$stamp"
    log "initramfs: packed $out"
}

main() {
    local key entry
    key="$(kernel_key)"
    entry="$KERNEL_CACHE/$key"
    if [[ "$MODE" == check ]]; then
        if [[ -f "$entry/vmlinux" ]]; then
            echo "kernel cached: $entry"
            exit 0
        fi
        echo "kernel not cached: $entry"
        exit 1
    fi

    local start=$SECONDS
    kernel_ensure "$key"
    mkdir -p "$OUT" || die "cannot create output directory $OUT"
    OUT="$(cd "$OUT" && pwd)"
    link_or_copy "$entry/vmlinux" "$OUT/vmlinux"

    if [[ "$MODE" == all ]]; then
        build_agent
        build_initramfs "$entry/gen_init_cpio"
    fi

    log "done in $(( SECONDS - start ))s"
    echo "kernel cache:   $entry"
    echo "vmlinux:        $OUT/vmlinux ($(human_size "$OUT/vmlinux"))"
    if [[ "$MODE" == all ]]; then
        echo "agent:          $AGENT_BIN ($(human_size "$AGENT_BIN"))"
        echo "initramfs:      $OUT/initramfs.cpio.gz ($(human_size "$OUT/initramfs.cpio.gz"))"
    fi
    echo "kernel cmdline: $GUEST_CMDLINE (built in, prepended: reboot=t)"
}

main
