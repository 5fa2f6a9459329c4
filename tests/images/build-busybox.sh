#!/usr/bin/env bash
# Build podvm's offline test images from the host's static busybox.
#
# Usage: tests/images/build-busybox.sh OUTDIR
#
# Produces, from /bin/busybox (Debian package busybox-static) with umoci and
# skopeo, without any network access:
#   OUTDIR/busybox-oci.tar     oci-archive,    docker.io/library/busybox:latest
#   OUTDIR/busybox-docker.tar  docker-archive, docker.io/library/busybox:latest
#   OUTDIR/entry-oci.tar       oci-archive,    docker.io/podvm/entry:latest
#
# busybox:latest is one layer: bin/busybox, one symlink per applet, etc/passwd,
# etc/group, etc/motd, home/app (1000:1000), root, tmp (1777); Cmd ["sh"].
# podvm/entry:latest adds a second layer on top of it with home/app/hello.txt
# and a whiteout of etc/motd; Entrypoint ["/bin/echo","from-entrypoint"],
# Cmd ["from-cmd"], User app, WorkingDir /home/app, Env + GREETING=hello.
#
# Idempotent: OUTDIR/.stamp records the busybox and script hashes; when they
# match and all outputs exist nothing is rebuilt.
set -euo pipefail

die() { echo "build-busybox.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
OUT=$1
BUSYBOX=${BUSYBOX:-/bin/busybox}

for tool in umoci skopeo sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install umoci skopeo)"
done
[ "$(id -u)" = 0 ] || die "must run as root (the image has files owned by uid 1000)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

STAMP="busybox=$(sha256sum "$BUSYBOX" | cut -d' ' -f1) script=$(sha256sum "$0" | cut -d' ' -f1)"
OUTPUTS=(busybox-oci.tar busybox-docker.tar entry-oci.tar)
have_all=1
for f in "${OUTPUTS[@]}"; do [ -s "$OUT/$f" ] || have_all=0; done
if [ "$have_all" = 1 ] && [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$STAMP" ]; then
    echo "build-busybox.sh: $OUT is up to date"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/podvm-test-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LAYOUT="$WORK/oci"
ENV_PATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:busybox"

# Layer 1: busybox and a minimal /etc.
umoci unpack --image "$LAYOUT:busybox" "$WORK/bundle1" >/dev/null
ROOT="$WORK/bundle1/rootfs"
mkdir -p "$ROOT/bin" "$ROOT/etc" "$ROOT/home/app" "$ROOT/root" "$ROOT/tmp"
install -m 0755 "$BUSYBOX" "$ROOT/bin/busybox"
"$BUSYBOX" --list | while read -r applet; do
    [ "$applet" = busybox ] || ln -sf busybox "$ROOT/bin/$applet"
done
cat >"$ROOT/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000::/home/app:/bin/sh
nobody:x:65534:65534::/:/bin/false
PASSWD
cat >"$ROOT/etc/group" <<'GROUP'
root:x:0:
app:x:1000:
extra:x:2000:app
nogroup:x:65534:
GROUP
echo "welcome to podvm busybox" >"$ROOT/etc/motd"
chmod 0644 "$ROOT/etc/passwd" "$ROOT/etc/group" "$ROOT/etc/motd"
chown 1000:1000 "$ROOT/home/app"
chmod 0755 "$ROOT/home/app"
chmod 0700 "$ROOT/root"
chmod 1777 "$ROOT/tmp"
umoci repack --image "$LAYOUT:busybox" "$WORK/bundle1"
umoci config --image "$LAYOUT:busybox" \
    --config.cmd sh --config.env "$ENV_PATH" \
    --architecture amd64 --os linux
umoci gc --layout "$LAYOUT"

# Layer 2: hello.txt for app, and a whiteout of etc/motd.
umoci unpack --image "$LAYOUT:busybox" "$WORK/bundle2" >/dev/null
ROOT="$WORK/bundle2/rootfs"
echo "hello from layer 2" >"$ROOT/home/app/hello.txt"
chown 1000:1000 "$ROOT/home/app/hello.txt"
chmod 0644 "$ROOT/home/app/hello.txt"
rm "$ROOT/etc/motd"
umoci repack --image "$LAYOUT:entry" "$WORK/bundle2"
umoci config --image "$LAYOUT:entry" \
    --config.entrypoint /bin/echo --config.entrypoint from-entrypoint \
    --config.cmd from-cmd \
    --config.user app --config.workingdir /home/app \
    --config.env GREETING=hello
umoci gc --layout "$LAYOUT"

copy() { skopeo --insecure-policy copy --quiet "$1" "$2"; }
rm -f "$OUT/.stamp"
for f in "${OUTPUTS[@]}"; do rm -f "$OUT/$f" "$OUT/$f.tmp"; done
copy "oci:$LAYOUT:busybox" "oci-archive:$OUT/busybox-oci.tar.tmp:docker.io/library/busybox:latest"
copy "oci:$LAYOUT:busybox" "docker-archive:$OUT/busybox-docker.tar.tmp:docker.io/library/busybox:latest"
copy "oci:$LAYOUT:entry" "oci-archive:$OUT/entry-oci.tar.tmp:docker.io/podvm/entry:latest"
for f in "${OUTPUTS[@]}"; do mv "$OUT/$f.tmp" "$OUT/$f"; done
echo "$STAMP" >"$OUT/.stamp"
echo "build-busybox.sh: wrote ${OUTPUTS[*]} to $OUT"
