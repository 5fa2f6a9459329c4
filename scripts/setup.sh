#!/usr/bin/env bash
# Installs what podvm needs on a fresh Debian 12 machine (run as root):
# qemu, the guest kernel source and build tools, image tools, the musl
# target for the static agent, and vhost-device-vsock (cached, keyed by
# version). Idempotent: a second run only checks.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

PACKAGES=(
  qemu-system-x86 linux-source-6.1 busybox-static
  build-essential bc bison flex libelf-dev libssl-dev cpio
  erofs-utils e2fsprogs skopeo umoci runc jq socat procps
)
VHOST_VSOCK_VERSION=0.3.0
CACHE=${PODVM_CACHE_DIR:-/var/cache/podvm}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# musl: the static guest agent; none: the VMM's bare-metal test guest.
for target in x86_64-unknown-linux-musl x86_64-unknown-none; do
  if ! rustup target list --installed | grep -qx "$target"; then
    log "adding the $target Rust target"
    rustup target add "$target"
  fi
done

tool_root="$CACHE/tools/vhost-device-vsock-$VHOST_VSOCK_VERSION"
if [[ ! -x "$tool_root/bin/vhost-device-vsock" ]]; then
  log "building vhost-device-vsock $VHOST_VSOCK_VERSION (cargo install, about a minute)"
  cargo install --quiet --locked vhost-device-vsock --version "$VHOST_VSOCK_VERSION" --root "$tool_root"
fi
ln -sf "$tool_root/bin/vhost-device-vsock" /usr/local/bin/vhost-device-vsock
log "vhost-device-vsock: $(command -v vhost-device-vsock)"
log "done"
