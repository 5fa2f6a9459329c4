#!/usr/bin/env bash
# A demo pod end to end on a fresh machine: installs what is needed, builds
# podvm, the guest image and a busybox image (offline), then runs
# examples/demo-pod.yaml in its own microVM and shows status, logs and exec
# before deleting it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup"
scripts/setup.sh
step "build podvm"
cargo build --release --quiet
step "guest image"
guest-image/build.sh
step "busybox image"
tests/images/build-busybox.sh target/test-images

podvm=target/release/podvm
export PODVM_GUEST_DIR="$PWD/target/guest"
$podvm delete pod demo --grace-period 0 >/dev/null 2>&1 || true

step "podvm image load -i target/test-images/busybox-oci.tar"
$podvm image load -i target/test-images/busybox-oci.tar
$podvm image ls
step "podvm apply -f examples/demo-pod.yaml"
time $podvm apply -f examples/demo-pod.yaml
step "podvm get pods (until the readiness probe passes)"
for _ in $(seq 600); do
  $podvm get pods demo | grep -q ' 1/1 ' && break
  sleep 0.2
done
$podvm get pods
step "podvm describe pod demo"
$podvm describe pod demo
step "podvm logs demo -c hello (the init container)"
$podvm logs demo -c hello
step "podvm exec demo -c web -- wget -qO- http://127.0.0.1:8080/index.html"
$podvm exec demo -c web -- wget -qO- http://127.0.0.1:8080/index.html
step "podvm exec demo -c web -- sh -c 'hostname; cat /etc/hosts; id; cat /tmp/started'"
$podvm exec demo -c web -- sh -c 'hostname; cat /etc/hosts; id; cat /tmp/started'
step "podvm get pod demo -o yaml (status)"
$podvm get pod demo -o yaml | sed -n '/^status:/,$p'
step "podvm delete pod demo"
$podvm delete pod demo --grace-period 5
$podvm get pods
