#!/usr/bin/env bash
# Agent API benchmark, before and after: the host ↔ agent API of an earlier
# commit (default: the last one speaking the v1 JSON frames) against this
# tree's, both end to end as a user sees them: `podvm exec POD -- true`
# round trip (CLI start, vsock connect, version exchange, exec, wait) and
# `podvm apply` → all containers running. Each side is built with its own
# agent in its own guest image (the kernel is shared). Prints figures side
# by side; asserts nothing.
# Usage: scripts/bench-api.sh [EXEC_RUNS] [APPLY_RUNS]   (env PODVM_BEFORE_REV)
set -euo pipefail
cd "$(dirname "$0")/.."
exec_runs=${1:-30}
apply_runs=${2:-5}
before_rev=${PODVM_BEFORE_REV:-5886295}

scripts/setup.sh >/dev/null
tests/images/build-busybox.sh target/test-images >/dev/null

# build SIDE DIR: release podvm + guest image of the tree at DIR.
build() {
  local side=$1 dir=$2
  echo "[bench-api] building $side ($(git -C "$dir" rev-parse --short HEAD 2>/dev/null || echo tree))" >&2
  (cd "$dir" && cargo build --release --quiet -p podvm && guest-image/build.sh --out "$dir/target/guest" >/dev/null)
}

before=$PWD/target/bench-before
if [[ ! -d $before/.git && ! -f $before/.git ]]; then
  git worktree add --detach "$before" "$before_rev" >/dev/null
else
  git -C "$before" checkout --quiet --detach "$before_rev"
fi
build "before ($before_rev)" "$before"
build "after (this tree)" "$PWD"

work=$(mktemp -d /tmp/podvm-bench-api.XXXXXX)
cleanup() {
  for side in before after; do
    [[ -x ${bin[$side]:-} ]] && PODVM_STATE_DIR=$work/$side/state "${bin[$side]}" delete pod bench-exec >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
declare -A bin=([before]=$before/target/release/podvm [after]=$PWD/target/release/podvm)
declare -A guest=([before]=$before/target/guest [after]=$PWD/target/guest)
trap cleanup EXIT

# stats: median/min/max of the numbers (µs) on stdin, printed in ms.
stats() { sort -n | awk '{a[NR]=$1} END {printf "%.1f ms (min %.1f, max %.1f, n=%d)", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000, NR}'; }

declare -A exec_fig apply_fig agent_fig
owner_fig="n/a (no owner before)"
for side in before after; do
  export PODVM_STATE_DIR=$work/$side/state PODVM_IMAGE_DIR=$work/$side/images PODVM_GUEST_DIR=${guest[$side]}
  podvm=${bin[$side]}
  $podvm image load -i target/test-images/busybox-oci.tar >/dev/null
  sed 's/name: bench$/name: bench-exec/' examples/bench-pod.yaml >"$work/$side.yaml"
  $podvm apply -f "$work/$side.yaml" >/dev/null
  $podvm exec bench-exec -- true  # warm: the first exec pages the helper in
  times=()
  for _ in $(seq 1 "$exec_runs"); do
    t0=$(date +%s%N)
    $podvm exec bench-exec -- true
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  exec_fig[$side]=$(printf '%s\n' "${times[@]}" | stats)
  owner=$PODVM_STATE_DIR/pods/default/bench-exec/owner.json
  if [[ -f $owner ]]; then
    pid=$(jq -r .pid "$owner")
    owner_fig="$(awk '/^VmRSS:/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
  fi
  $podvm delete pod bench-exec >/dev/null
  bench_out=$($podvm bench -f examples/bench-pod.yaml --runs "$apply_runs")
  apply_fig[$side]=$(sed -n 's/^apply → all containers started: //p' <<<"$bench_out")
  agent_fig[$side]=$(sed -n 's/^agent RSS: //p' <<<"$bench_out")
done

echo
echo "hypervisor: $(${bin[after]} host-check | tail -n 1)"
printf '%-44s %-40s %s\n' "measure" "before ($before_rev, v1 JSON frames)" "after (ttrpc + protobuf)"
printf '%-44s %-40s %s\n' "podvm exec POD -- true, round trip" "${exec_fig[before]}" "${exec_fig[after]}"
printf '%-44s %-40s %s\n' "podvm apply → all containers running" "${apply_fig[before]}" "${apply_fig[after]}"
printf '%-44s %-40s %s\n' "agent RSS in the guest (PID 1)" "${agent_fig[before]}" "${agent_fig[after]}"
printf '%-44s %-40s %s\n' "per-pod owner RSS on the host" "-" "$owner_fig"
