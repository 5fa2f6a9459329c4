#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while (default 60 s each). cargo-fuzz is
# installed once into podvm's tool cache; libFuzzer needs nightly features,
# which RUSTC_BOOTSTRAP enables on the stable toolchain.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
tools=${PODVM_CACHE_DIR:-/var/cache/podvm}/tools/cargo-fuzz
if [[ ! -x "$tools/bin/cargo-fuzz" ]]; then
  echo "[fuzz] installing cargo-fuzz into $tools"
  cargo install --quiet --locked cargo-fuzz --root "$tools"
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  echo "[fuzz] $target for ${secs}s"
  cargo fuzz run "$target" -- -max_total_time="$secs" -max_len=65536 2>&1 | grep -E "^(Done|==|SUMMARY|INFO: Running)" || true
  # cargo fuzz exits non-zero on a crash; the grep above must not hide that.
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "[fuzz] $target FAILED"; exit 1; }
done
