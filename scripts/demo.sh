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
sleep 2
step "podvm get pods"
$podvm get pods
step "podvm get events (kept by the pod's owner)"
$podvm get events
step "podvm logs demo -c hello"
$podvm logs demo -c hello
step "podvm exec demo -c web -- sh -c 'hostname; cat /etc/hosts; id'"
$podvm exec demo -c web -- sh -c 'hostname; cat /etc/hosts; id'
step "podvm get pod demo -o yaml (status)"
$podvm get pod demo -o yaml | sed -n '/^status:/,$p'
step "podvm delete pod demo"
$podvm delete pod demo --grace-period 5
$podvm get pods
