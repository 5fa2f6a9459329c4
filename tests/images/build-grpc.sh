#!/usr/bin/env bash
# Build podvm's offline gRPC health server test image.
#
# Usage: tests/images/build-grpc.sh OUTDIR
#
# Needs OUTDIR/busybox-oci.tar from tests/images/build-busybox.sh OUTDIR.
# Produces, with cargo, umoci and skopeo, without pulling any image:
#   OUTDIR/grpc-health-oci.tar  oci-archive, docker.io/podvm/grpc-health:latest
#
# podvm/grpc-health:latest is busybox:latest plus one layer holding
# /bin/grpc-health-server, the static musl build of podvm-probe's example
# grpc_health_server (see probe/examples/grpc_health_server.rs for its
# arguments); Entrypoint ["/bin/grpc-health-server"], no Cmd.
#
# Idempotent: OUTDIR/.stamp-grpc records the server binary's, the busybox
# archive's and this script's hashes; when they match and the output exists
# nothing is rebuilt (cargo still checks that the binary is up to date).
set -euo pipefail

die() { echo "build-grpc.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT="$REPO/tests/images/build-grpc.sh"
OUT=$1
TARGET=x86_64-unknown-linux-musl

for tool in cargo umoci skopeo sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/setup.sh)"
done
[ -s "$OUT/busybox-oci.tar" ] || die "no $OUT/busybox-oci.tar (run tests/images/build-busybox.sh $OUT)"
OUT=$(cd "$OUT" && pwd)

# .cargo/config.toml points ring's C build for musl at the host's cc.
(cd "$REPO" && cargo build --quiet --release -p podvm-probe \
    --example grpc_health_server --target "$TARGET") \
    || die "cargo build of the grpc_health_server example for $TARGET failed"
SERVER="${CARGO_TARGET_DIR:-$REPO/target}/$TARGET/release/examples/grpc_health_server"
[ -x "$SERVER" ] || die "$SERVER was not built"

hash() { sha256sum "$1" | cut -d' ' -f1; }
STAMP="server=$(hash "$SERVER") busybox=$(hash "$OUT/busybox-oci.tar") script=$(hash "$SCRIPT")"
OUTPUT=grpc-health-oci.tar
if [ -s "$OUT/$OUTPUT" ] && [ -f "$OUT/.stamp-grpc" ] && [ "$(cat "$OUT/.stamp-grpc")" = "$STAMP" ]; then
    echo "build-grpc.sh: $OUT/$OUTPUT is up to date"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/podvm-grpc-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LAYOUT="$WORK/oci"

copy() { skopeo --insecure-policy copy --quiet "$1" "$2"; }
copy "oci-archive:$OUT/busybox-oci.tar" "oci:$LAYOUT:grpc"
# unpack + repack, not `umoci insert`: 0.4.7's insert leaves the layer's
# tar stream unterminated.
umoci unpack --image "$LAYOUT:grpc" "$WORK/bundle" >/dev/null
install -m 0755 "$SERVER" "$WORK/bundle/rootfs/bin/grpc-health-server"
umoci repack --image "$LAYOUT:grpc" "$WORK/bundle"
umoci config --image "$LAYOUT:grpc" \
    --config.entrypoint /bin/grpc-health-server --clear config.cmd
umoci gc --layout "$LAYOUT"

rm -f "$OUT/.stamp-grpc" "$OUT/$OUTPUT" "$OUT/$OUTPUT.tmp"
copy "oci:$LAYOUT:grpc" "oci-archive:$OUT/$OUTPUT.tmp:docker.io/podvm/grpc-health:latest"
mv "$OUT/$OUTPUT.tmp" "$OUT/$OUTPUT"
echo "$STAMP" >"$OUT/.stamp-grpc"
echo "build-grpc.sh: wrote $OUTPUT to $OUT"
