#!/usr/bin/env bash
# Pod lifecycle benchmarks (issue 8). Prints figures side by side; asserts
# nothing.
#  (a) the agent's CPU for 100 probes/s of each kind (exec, httpGet,
#      tcpSocket, grpc) against the same checks run by a shell loop in a
#      container;
#  (b) process listening → container Ready with an httpGet readiness probe
#      at periodSeconds 1 and 10, against a 10 ms connect poll;
#  (c) the agent's RSS, idle and with 10 containers with probes
#      (bench/pod-idle.yaml, bench/pod-probes.yaml): in host mode and in
#      the microVM through `podvm bench`.
# (a), (b) and host-mode (c) are the #[ignore]d tests of
# agent/tests/bench_lifecycle.rs (real agent in host mode, real namespaces).
# Usage: scripts/bench-lifecycle.sh [VM_RUNS]   (run as root)
# Env: PODVM_BENCH_WINDOW_S (here 15 s by default), PODVM_BENCH_PEER_WINDOW_S,
#      PODVM_BENCH_KINDS, PODVM_BENCH_READY_N (see the test file's doc comment).
set -euo pipefail
cd "$(dirname "$0")/.."
vm_runs=${1:-3}

scripts/setup.sh >/dev/null
echo "[bench-lifecycle] building (release): podvm, the guest image, the benchmark tests" >&2
cargo build --release --quiet -p podvm
guest-image/build.sh >/dev/null
tests/images/build-busybox.sh target/test-images >/dev/null
# The test binary is run directly: no cargo (and no wait on its build lock)
# while measuring.
tests=$(cargo test --release -p podvm-agent --test bench_lifecycle --no-run 2>&1 |
  sed -n 's/.*Executable .*(\(.*\))$/\1/p')
[[ -x $tests ]] || { echo "bench-lifecycle: no test binary found" >&2; exit 1; }
export PODVM_BENCH_WINDOW_S=${PODVM_BENCH_WINDOW_S:-15}

started=$(date +%s)
echo "== $(date -u +%FT%TZ) $(nproc) CPUs; load at start: $(uptime | sed 's/.*load average: //')"

# One benchmark test; the agents' own log lines (stderr) are left out.
bench_test() {
  "$tests" --ignored --nocapture --test-threads 1 --exact "$1" 2>&1 |
    grep -vE '^(podvm-agent: |running 1 test$|test [a-z_]+ \.\.\. ?$|ok$|$)'
}
bench_test bench_probe_cpu
bench_test bench_listening_to_ready
bench_test bench_agent_rss

echo
echo "== (c) agent RSS in the microVM: podvm bench ($vm_runs runs each; RSS read once no container is waiting, which the probe pod holds off 15 s)"
work=$(mktemp -d /tmp/podvm-bench-lifecycle.XXXXXX)
trap 'rm -rf "$work"' EXIT
export PODVM_STATE_DIR=$work/state PODVM_IMAGE_DIR=$work/images PODVM_GUEST_DIR=$PWD/target/guest
podvm=target/release/podvm
$podvm image load -i target/test-images/busybox-oci.tar >/dev/null
$podvm host-check | tail -n 1
for manifest in bench/pod-idle.yaml bench/pod-probes.yaml; do
  out=$($podvm bench -f "$manifest" --runs "$vm_runs")
  printf '%-24s agent RSS: %s; apply → all started: %s\n' "$manifest" \
    "$(sed -n 's/^agent RSS: //p' <<<"$out")" \
    "$(sed -n 's/^apply → all containers started: //p' <<<"$out")"
done

echo
echo "== load at the end: $(uptime | sed 's/.*load average: //'); the benchmarks took $(( $(date +%s) - started )) s"
