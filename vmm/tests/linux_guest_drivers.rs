//! Boots the real guest kernel built by `guest-image/build.sh`
//! (`target/guest/vmlinux` + `initramfs.cpio.gz`) with the `podvm-vmm`
//! binary, with a read-only virtio-blk disk, virtio-vsock and virtio-rng,
//! and checks from the VMM's own log that Linux's virtio-mmio drivers set
//! DRIVER_OK on all three devices, and from the serial console that the
//! kernel saw the block device.
//!
//! On this project's machines KVM is `kvm_pvm` (see
//! `/work/shared/host-notes.md`): a Linux guest gets as far as driver
//! probing only with `clearcpuid=154,141,308,151` and the int3 self-test
//! skipped (`podvm.skip_int3_selftest`, a guest-image kernel patch), and
//! with the KVM PTP clock left out of the kernel; its userspace cannot run.
//! So after the drivers are up the guest dies at /init's first syscall and
//! the kernel panics and resets: the test waits for that (killing the VMM
//! after a deadline) and asserts it (see [`check_end`]). On a real KVM host
//! the drivers come up the same way and the agent keeps running. The whole
//! test takes about 60-70 s on kvm_pvm, most of it kernel boot.
//!
//! Needs `/dev/kvm` and the guest image; without them it prints a SKIP
//! line (a failure where skips are forbidden, as in CI).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long the kernel may take to bring all drivers up (measured on
/// kvm_pvm: see docs/vmm.md).
const DRIVERS_DEADLINE: Duration = Duration::from_secs(60);
/// How long the VMM may run on after that before the test kills it: on
/// kvm_pvm unpacking the initramfs and reaching /init take about 25 s more.
const EXIT_DEADLINE: Duration = Duration::from_secs(45);
/// The string the podvm kernel patch adds to vmlinux.
const SKIP_INT3_PARAM: &str = "podvm.skip_int3_selftest";
/// Kernel command line: the kvm_pvm workarounds, the kernel log on COM1.
/// `nopv`: KVM's paravirtual IPI hypercall (KVM_HC_SEND_IPI) does not
/// deliver on kvm_pvm, so a second CPU's first IPIs spin for ever; plain
/// APIC IPIs work.
const CMDLINE: &str = "console=ttyS0 panic=-1 clearcpuid=154,141,308,151 \
                       podvm.skip_int3_selftest nopv rdinit=/init";
/// vCPUs the kernel runs on (so the MP table and AP start-up are tested).
const VCPUS: &str = "2";
/// What the VMM logs (info) for each device, in window order.
const DRIVER_OK_LINES: [&str; 3] = [
    "virtio-mmio: virtio-rng at 0xd0000000: driver status DRIVER_OK",
    "virtio-mmio: virtio-blk at 0xd0001000: driver status DRIVER_OK",
    "virtio-mmio: virtio-vsock at 0xd0002000: driver status DRIVER_OK",
];
/// What the kernel prints on the serial console for the disk (2048 sectors).
const VDA_LINE: &str = "virtio_blk virtio1: [vda] 2048 512-byte logical blocks";

fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guest")
}

/// The kernel and initramfs, or `Err` saying why the test cannot run.
fn guest_image() -> Result<(PathBuf, PathBuf), String> {
    if !Path::new("/dev/kvm").exists() {
        return Err("/dev/kvm is absent on this machine".into());
    }
    let dir = guest_dir();
    let (kernel, initrd) = (dir.join("vmlinux"), dir.join("initramfs.cpio.gz"));
    for path in [&kernel, &initrd] {
        if !path.exists() {
            return Err(format!(
                "{} is missing (build it with guest-image/build.sh)",
                path.display()
            ));
        }
    }
    let image = std::fs::read(&kernel).map_err(|e| format!("read {}: {e}", kernel.display()))?;
    if !image
        .windows(SKIP_INT3_PARAM.len())
        .any(|w| w == SKIP_INT3_PARAM.as_bytes())
    {
        return Err(format!(
            "{} predates the {SKIP_INT3_PARAM} patch (rebuild with guest-image/build.sh)",
            kernel.display()
        ));
    }
    // Built in, the KVM PTP clock's initcall never returns on kvm_pvm
    // (guest-image/kernel.config now turns it off).
    if image.windows(12).any(|w| w == b"ptp_kvm_init") {
        return Err(format!(
            "{} still has the KVM PTP clock (rebuild with guest-image/build.sh)",
            kernel.display()
        ));
    }
    Ok((kernel, initrd))
}

/// A line from the VMM: serial console (stdout) or log (stderr).
enum Line {
    Serial(String),
    Log(String),
}

/// Forwards each line of `pipe` to `tx`, wrapped by `wrap`.
fn forward<R: Read + Send + 'static>(
    pipe: R,
    tx: std::sync::mpsc::Sender<Line>,
    wrap: fn(String) -> Line,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if tx.send(wrap(text)).is_err() {
                break;
            }
        }
    })
}

/// Everything one VM run produced.
#[derive(Default)]
struct Seen {
    serial: Vec<String>,
    log: Vec<String>,
    /// When each of [`DRIVER_OK_LINES`] appeared, since spawn.
    driver_ok_at: [Option<Duration>; 3],
    vda_at: Option<Duration>,
}

impl Seen {
    fn add(&mut self, line: Line, at: Duration) {
        match line {
            Line::Serial(text) => {
                if text.contains(VDA_LINE) {
                    self.vda_at.get_or_insert(at);
                }
                self.serial.push(text);
            }
            Line::Log(text) => {
                for (wanted, seen) in DRIVER_OK_LINES.iter().zip(&mut self.driver_ok_at) {
                    if text.contains(wanted) {
                        seen.get_or_insert(at);
                    }
                }
                self.log.push(text);
            }
        }
    }

    fn drivers_up(&self) -> bool {
        self.driver_ok_at.iter().all(Option::is_some) && self.vda_at.is_some()
    }

    fn dump(&self) -> String {
        format!(
            "--- serial\n{}\n--- log\n{}",
            self.serial.join("\n"),
            self.log.join("\n")
        )
    }
}

/// Collects lines from `rx` until `done(seen)`, `deadline` or both pipes closed.
fn collect(
    rx: &Receiver<Line>,
    seen: &mut Seen,
    started: Instant,
    deadline: Instant,
    done: fn(&Seen) -> bool,
) {
    while !done(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.add(line, started.elapsed()),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Waits for `child` until `deadline`, then kills it; `None` when killed.
fn wait_or_kill(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("wait for podvm-vmm") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn linux_virtio_drivers_reach_driver_ok_on_blk_vsock_and_rng() {
    let test = "linux_virtio_drivers_reach_driver_ok_on_blk_vsock_and_rng";
    let (kernel, initrd) = match guest_image() {
        Ok(image) => image,
        Err(why) => return podvm_testsupport::skip(test, &why),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).expect("write disk image");
    let uds = dir.path().join("v.sock");

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_podvm-vmm"))
        .arg("run")
        .arg("--kernel")
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args(["--cmdline", CMDLINE, "--memory-mib", "256", "--rng"])
        .args(["--vcpus", VCPUS])
        .arg("--disk")
        .arg(format!("path={},ro=true,serial=podvm-img0", disk.display()))
        .arg("--vsock")
        .arg(format!("uds={}", uds.display()))
        .args(["--serial", "stdout", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn podvm-vmm");
    let (tx, rx) = channel();
    let readers = [
        forward(
            child.stdout.take().expect("stdout"),
            tx.clone(),
            Line::Serial,
        ),
        forward(child.stderr.take().expect("stderr"), tx, Line::Log),
    ];

    let mut seen = Seen::default();
    collect(
        &rx,
        &mut seen,
        started,
        started + DRIVERS_DEADLINE,
        Seen::drivers_up,
    );
    let drivers_done = started.elapsed();
    let exit = wait_or_kill(&mut child, Instant::now() + EXIT_DEADLINE);
    for reader in readers {
        reader.join().expect("pipe reader");
    }
    while let Ok(line) = rx.try_recv() {
        seen.add(line, started.elapsed());
    }
    eprintln!("{}", seen.dump());

    for (wanted, at) in DRIVER_OK_LINES.iter().zip(seen.driver_ok_at) {
        let at = at.unwrap_or_else(|| panic!("no '{wanted}' in the VMM log:\n{}", seen.dump()));
        podvm_testsupport::note(test, &format!("{wanted} after {at:?}"));
    }
    let vda = seen
        .vda_at
        .unwrap_or_else(|| panic!("no '{VDA_LINE}' on the serial console:\n{}", seen.dump()));
    podvm_testsupport::note(
        test,
        &format!("kernel log '{VDA_LINE}' after {vda:?}; all drivers up after {drivers_done:?}"),
    );
    let features = seen
        .log
        .iter()
        .filter(|l| l.contains("driver status DRIVER_OK, features 0x1"))
        .count();
    assert_eq!(features, 3, "every driver negotiated VIRTIO_F_VERSION_1");
    assert!(
        seen.serial
            .iter()
            .any(|l| l.contains("IOAPIC[0]: apic_id 2, version 17, address 0xfec00000, GSI 0-23")),
        "the kernel read the MP table (CPUs 0 and 1, then the IOAPIC):\n{}",
        seen.dump()
    );
    assert!(
        seen.serial
            .iter()
            .any(|l| l.contains("smp: Brought up 1 node, 2 CPUs")),
        "the second vCPU came up:\n{}",
        seen.dump()
    );
    assert!(
        seen.log
            .iter()
            .any(|l| l.contains("kernel: Elf image, pvh boot protocol")),
        "the kernel's PVH note was used (CONFIG_PVH=y in guest-image/kernel.config):\n{}",
        seen.dump()
    );

    check_end(test, exit, &seen, started.elapsed());
}

/// How the run ended. On kvm_pvm (host-notes): PID 1's first `syscall`
/// comes back to user mode at a kernel address, `init[1]: segfault`, the
/// kernel panics ("Attempted to kill init"), and `panic=-1` reboots at
/// once; with `reboot=k` that is an i8042 reset, which the VMM reports as
/// a guest-requested stop: exit status 0. Elsewhere the agent runs as
/// PID 1 and keeps running until the test kills the VMM.
fn check_end(test: &str, exit: Option<ExitStatus>, seen: &Seen, elapsed: Duration) {
    let how = match exit {
        Some(status) => format!("exited with {status}"),
        None => format!("killed by the test {EXIT_DEADLINE:?} after the drivers came up"),
    };
    podvm_testsupport::note(test, &format!("podvm-vmm {how}, {elapsed:?} after spawn"));
    let serial = |text: &str| seen.serial.iter().any(|l| l.contains(text));
    let log = |text: &str| seen.log.iter().any(|l| l.contains(text));
    assert!(
        serial("Run /init as init process"),
        "the kernel never started /init:\n{}",
        seen.dump()
    );
    if !Path::new("/sys/module/kvm_pvm").exists() {
        let status = exit.map(|s| s.code());
        assert!(
            matches!(status, None | Some(Some(0))),
            "the guest should run its agent (killed by the test) or reset, got {how}:\n{}",
            seen.dump()
        );
        return;
    }
    let status = exit.unwrap_or_else(|| {
        panic!(
            "on kvm_pvm the guest should die at /init's first syscall, but {how}:\n{}",
            seen.dump()
        )
    });
    for expected in [
        "init[1]: segfault at ffffffff",
        "Kernel panic - not syncing: Attempted to kill init!",
    ] {
        assert!(
            serial(expected),
            "no '{expected}' on the serial console:\n{}",
            seen.dump()
        );
    }
    assert_eq!(
        status.code(),
        Some(0),
        "the panic reboot (reboot=k: i8042 reset) is a guest-requested stop:\n{}",
        seen.dump()
    );
    assert!(
        log("VM stopped: guest reset the machine"),
        "{}",
        seen.dump()
    );
    podvm_testsupport::note(
        test,
        "expected on kvm_pvm: /init segfaulted at its first syscall, the kernel panicked and \
         reset the VM (exit 0)",
    );
}
