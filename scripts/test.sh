#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is needed, builds
# the guest image (kernel cached outside the repo) and the test images, checks
# formatting and lints, then runs every test, end-to-end qemu pods included.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup"
scripts/setup.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The no_std test guest is its own workspace (x86_64-unknown-none), both
# of its boot-entry variants.
(
    cd vmm/test-guest
    cargo fmt -- --check
    for features in "" "pvh"; do
        cargo clippy --quiet --release --target x86_64-unknown-none \
            --target-dir ../../target/test-guest-lint --features "$features" -- -D warnings
    done
)

step "guest image (kernel + agent initramfs)"
guest-image/build.sh

step "test images (busybox, offline)"
tests/images/build-busybox.sh target/test-images
tests/images/build-grpc.sh target/test-images

step "fuzz the decoders: protocol frames, virtqueues (30 s per target)"
scripts/fuzz.sh 30

step "tests"
# Every test must run: a missing prerequisite fails instead of skipping.
export PODVM_REQUIRE_ALL_TESTS=1
export PODVM_TEST_IMAGES="$PWD/target/test-images"
export PODVM_GUEST_DIR="$PWD/target/guest"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
# Summarise across all test binaries in the plain form CI understands.
passed=$(grep -Eo '^test result: .*' target/test-output.txt | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '^test result: .*' target/test-output.txt | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed"
