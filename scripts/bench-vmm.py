#!/usr/bin/env python3
"""VMM start-up benchmark: process start → first byte on the guest's serial
console, and the VMM's RSS at that moment, for the builtin VMM (podvm-vmm)
and qemu -M microvm, both on KVM, booting the same guest kernel
(target/guest/vmlinux) with the same command line. Prints figures; asserts
nothing. Usage: scripts/bench-vmm.py [RUNS]"""

import os
import select
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "target/guest/vmlinux")
VMM = os.path.join(ROOT, "target/release/podvm-vmm")
MEM_MIB = 256
# clearcpuid: features this host's kvm_pvm cannot emulate (host-notes.md);
# harmless on real KVM.
CMDLINE = "console=ttyS0 panic=-1 clearcpuid=154,141,308,151"


def builtin_cmd():
    return [VMM, "run", "--kernel", KERNEL, "--cmdline", CMDLINE,
            "--memory-mib", str(MEM_MIB), "--serial", "stdout"]


def qemu_cmd():
    return ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host",
            "-M", "microvm,x-option-roms=off,rtc=off,acpi=off",
            "-m", f"{MEM_MIB}M", "-smp", "1", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", "stdio",
            "-kernel", KERNEL, "-append", CMDLINE]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def one_run(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        if not ready:
            raise RuntimeError("no serial output within 30 s")
        first = os.read(p.stdout.fileno(), 1)
        elapsed = (time.perf_counter() - t0) * 1000
        if not first:
            raise RuntimeError("the VMM exited without serial output")
        rss = rss_kib(p.pid)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    return elapsed, rss


def summary(name, runs):
    ms = [r[0] for r in runs]
    rss = [r[1] for r in runs]
    print(f"{name:<28} {statistics.median(ms):>9.1f} {min(ms):>9.1f} {max(ms):>9.1f}"
          f" {statistics.median(rss) / 1024:>14.1f}")
    return statistics.median(ms)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for path in (KERNEL, VMM):
        if not os.path.exists(path):
            sys.exit(f"{path} missing: run guest-image/build.sh and cargo build --release")
    print(f"start → first serial byte, {n} runs each, guest {MEM_MIB} MiB, kernel {KERNEL}")
    print(f"{'VMM':<28} {'median ms':>9} {'min':>9} {'max':>9} {'RSS MiB (med)':>14}")
    b = summary("builtin podvm-vmm (kvm)", [one_run(builtin_cmd()) for _ in range(n)])
    q = summary("qemu -M microvm (kvm)", [one_run(qemu_cmd()) for _ in range(n)])
    print(f"builtin is {q / b:.1f}x faster to first serial byte")


if __name__ == "__main__":
    main()
