#!/usr/bin/env python3
"""VMM benchmarks, builtin podvm-vmm vs qemu -M microvm, both on KVM, same
guest, same memory size, same command line. Prints figures; asserts nothing.

1. Start: VMM process start → first byte on the guest's serial console.
   a. The no_std test guest (vmm/test-guest built with its PVH note), whose
      first instruction writes to COM1: this measures the VMM's own start.
   b. The podvm guest kernel (target/guest/vmlinux, PVH entry on both), where
      the time is the guest kernel's early boot on this host's KVM.
2. Memory overhead of the VMM: RSS minus the resident part of the guest's
   RAM mapping(s), read from /proc/PID/smaps once the test guest has halted.

Usage: scripts/bench-vmm.py [RUNS]   (builds what it needs with cargo)"""

import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(ROOT, "target/guest/vmlinux")
VMM = os.path.join(ROOT, "target/release/podvm-vmm")
GUEST_DIR = os.path.join(ROOT, "vmm/test-guest")
GUEST_TARGET = os.path.join(ROOT, "target/bench-test-guest")
TEST_GUEST = os.path.join(GUEST_TARGET, "x86_64-unknown-none/release/podvm-test-guest")
MEM_MIB = 256
# clearcpuid: features this host's kvm_pvm cannot emulate (host-notes.md);
# harmless on real KVM.
KERNEL_CMDLINE = "console=ttyS0 panic=-1 clearcpuid=154,141,308,151"
# The test guest skips its checks (other VMMs put boot data elsewhere),
# prints its banner and halts until killed.
GUEST_CMDLINE = "testguest.checks=off testguest.end=halt"
GUEST_HALTED = b"all checks passed"


def builtin_cmd(kernel, cmdline):
    return [VMM, "run", "--kernel", kernel, "--cmdline", cmdline,
            "--memory-mib", str(MEM_MIB), "--serial", "stdout"]


def qemu_cmd(kernel, cmdline):
    return ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host",
            "-M", "microvm,x-option-roms=off,rtc=off,acpi=off",
            "-m", f"{MEM_MIB}M", "-smp", "1", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", "stdio",
            "-kernel", kernel, "-append", cmdline]


def build():
    env = dict(os.environ)
    for var in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"):
        env.pop(var, None)
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "podvm-vmm"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target",
                    "x86_64-unknown-none", "--features", "pvh",
                    "--target-dir", GUEST_TARGET], cwd=GUEST_DIR, env=env, check=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def guest_ram_rss_kib(pid):
    """Resident KiB of the mappings large enough to be guest RAM (both VMMs
    map the guest's RAM as one anonymous or memfd mapping of MEM_MIB)."""
    total = 0
    size = 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if head:
                size = int(head.group(2), 16) - int(head.group(1), 16)
            elif line.startswith("Rss:") and size >= MEM_MIB << 20:
                total += int(line.split()[1])
    return total


def read_until(p, marker, deadline):
    seen = b""
    while marker not in seen:
        left = deadline - time.perf_counter()
        ready, _, _ = select.select([p.stdout], [], [], max(left, 0))
        if not ready:
            raise RuntimeError(f"no {marker!r} on serial in time: {seen[-200:]!r}")
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            raise RuntimeError(f"the VMM exited: {seen[-200:]!r}")
        seen += chunk


def one_run(cmd, halted_marker=None):
    """(ms to first serial byte, RSS KiB then, overhead KiB once halted)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    overhead = None
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        if not ready:
            raise RuntimeError("no serial output within 30 s")
        first = os.read(p.stdout.fileno(), 1)
        elapsed = (time.perf_counter() - t0) * 1000
        if not first:
            raise RuntimeError("the VMM exited without serial output")
        rss = rss_kib(p.pid)
        if halted_marker:
            read_until(p, halted_marker, time.perf_counter() + 10)
            time.sleep(0.2)
            overhead = (rss_kib(p.pid), guest_ram_rss_kib(p.pid))
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    return elapsed, rss, overhead


def start_table(title, runs_by_vmm):
    print(title)
    print(f"  {'VMM':<26} {'median ms':>9} {'min':>8} {'max':>8} {'RSS MiB':>8}")
    medians = {}
    for name, runs in runs_by_vmm:
        ms = [r[0] for r in runs]
        rss = [r[1] for r in runs]
        medians[name] = statistics.median(ms)
        print(f"  {name:<26} {statistics.median(ms):>9.1f} {min(ms):>8.1f} {max(ms):>8.1f}"
              f" {statistics.median(rss) / 1024:>8.1f}")
    (b_name, b), (q_name, q) = medians.items()
    print(f"  {b_name} reaches the first byte {q / b:.1f}x sooner than {q_name}\n")


def overhead_table(runs_by_vmm):
    print(f"VMM memory overhead, test guest halted, {MEM_MIB} MiB guest "
          "(RSS minus resident guest RAM, median)")
    print(f"  {'VMM':<26} {'RSS KiB':>9} {'guest RAM KiB':>14} {'overhead MiB':>13}")
    for name, runs in runs_by_vmm:
        rss = statistics.median(r[2][0] for r in runs)
        guest = statistics.median(r[2][1] for r in runs)
        over = statistics.median((r[2][0] - r[2][1]) / 1024 for r in runs)
        print(f"  {name:<26} {rss:>9.0f} {guest:>14.0f} {over:>13.2f}")
    print()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    build()
    names = ("builtin podvm-vmm (kvm)", "qemu -M microvm (kvm)")
    print(f"{n} runs each; {os.cpu_count()} CPUs; /dev/kvm module: "
          f"{', '.join(m for m in os.listdir('/sys/module') if m.startswith('kvm'))}\n")
    guest_runs = [
        (names[0], [one_run(builtin_cmd(TEST_GUEST, GUEST_CMDLINE), GUEST_HALTED)
                    for _ in range(n)]),
        (names[1], [one_run(qemu_cmd(TEST_GUEST, GUEST_CMDLINE), GUEST_HALTED)
                    for _ in range(n)]),
    ]
    start_table("start → first serial byte, no_std test guest (PVH entry)", guest_runs)
    overhead_table(guest_runs)
    if not os.path.exists(KERNEL):
        print(f"{KERNEL} missing (guest-image/build.sh): kernel start not measured")
        return
    kernel_runs = [
        (names[0], [one_run(builtin_cmd(KERNEL, KERNEL_CMDLINE)) for _ in range(n)]),
        (names[1], [one_run(qemu_cmd(KERNEL, KERNEL_CMDLINE)) for _ in range(n)]),
    ]
    start_table("start → first serial byte, podvm guest kernel (PVH entry; the guest "
                "kernel's early boot dominates on kvm_pvm)", kernel_runs)


if __name__ == "__main__":
    main()
