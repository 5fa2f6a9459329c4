#!/usr/bin/env bash
# Pod start-up benchmark: `podvm apply` → all containers running (qemu
# microVM), side by side with the same busybox container started by runc
# directly on the host (no VM), and the agent's memory. Prints figures;
# asserts nothing. Usage: scripts/bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}

scripts/setup.sh >/dev/null
command -v runc >/dev/null || { apt-get install -y -qq runc >/dev/null; }
cargo build --release --quiet
guest-image/build.sh >/dev/null
tests/images/build-busybox.sh target/test-images >/dev/null

work=$(mktemp -d /tmp/podvm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export PODVM_STATE_DIR=$work/state PODVM_IMAGE_DIR=$work/images PODVM_GUEST_DIR=$PWD/target/guest
podvm=target/release/podvm
$podvm image load -i target/test-images/busybox-oci.tar >/dev/null

echo "== podvm: apply → all containers running ($runs runs)"
$podvm host-check | sed 's/^/   /'
$podvm bench -f examples/bench-pod.yaml --runs "$runs"

echo
echo "== peer: runc run of the same image on the host, no VM ($runs runs)"
rootfs=$(find "$work/images/rootfs" -mindepth 1 -maxdepth 1 -type d | head -n1)
bundle=$work/bundle
mkdir -p "$bundle" && (cd "$bundle" && runc spec)
jq --arg root "$rootfs" '.root = {path: $root, readonly: true} | .process.terminal = false | .process.args = ["true"]' \
  "$bundle/config.json" >"$bundle/config.json.new" && mv "$bundle/config.json.new" "$bundle/config.json"
times=()
for i in $(seq 1 "$runs"); do
  t0=$(date +%s%N)
  runc run --bundle "$bundle" "podvm-bench-$$-$i" >/dev/null
  t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "runc run (create+start+exit of /bin/true): median %.1f ms, min %.1f, max %.1f (n=%d)\n", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000, NR}'
