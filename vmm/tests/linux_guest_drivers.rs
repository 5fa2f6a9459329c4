//! Boots the real guest kernel built by `guest-image/build.sh`
//! (`target/guest/vmlinux` + `initramfs.cpio.gz`, or those in
//! `PODVM_GUEST_DIR`) with the `podvm-vmm` binary, with a read-only
//! virtio-blk disk, virtio-vsock and virtio-rng, and checks from the VMM's
//! own log that Linux's virtio-mmio drivers set DRIVER_OK on all three
//! devices, and from the serial console that the kernel saw the block
//! device.
//!
//! On this project's machines KVM is `kvm_pvm` (see
//! `/work/shared/host-notes.md`): a Linux guest gets as far as driver
//! probing only with `clearcpuid=154,141,308,151` and the int3 self-test
//! skipped (`podvm.skip_int3_selftest`, a guest-image kernel patch), and
//! with the KVM PTP clock left out of the kernel; its userspace cannot run.
//! So after the drivers are up the guest dies at /init's first syscall and
//! the kernel panics and resets: the test waits for that and asserts it
//! (see [`check_end`]). On a real KVM host the drivers come up the same way
//! and the agent keeps running: there the test ends when the agent says on
//! the console that it listens, after "Run /init as init process".
//!
//! The test waits on events and progress, never on a fixed clock: every
//! line the VMM writes (serial console or log) is progress, and the run
//! ends when the VMM exits or the agent comes up. It gives up only when no
//! line came for [`PATIENCE`]'s stall limit (5 minutes) or at its
//! last-resort overall limit (20 minutes). On kvm_pvm, whose speed varies
//! more than 2x from day to day, the drivers came up after 29 s on one day
//! and 72 s on another, and the whole run takes 1-2.5 minutes (figures in
//! docs/benchmarks.md).
//!
//! Needs `/dev/kvm` and the guest image; without them it prints a SKIP
//! line (a failure where skips are forbidden, as in CI).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use podvm_testsupport::progress::{wait_on_progress, GaveUp, Patience, Waited};

/// How long the test waits: while the VMM keeps writing lines, up to the
/// last-resort limit; a VMM silent for the stall limit is stuck. The
/// longest time without a line in a kvm_pvm boot was about 52 s here (the
/// test prints it).
const PATIENCE: Patience = Patience {
    stall: Duration::from_secs(5 * 60),
    overall: Duration::from_secs(20 * 60),
};
/// How long a VMM that closed its output may take to be reaped (a
/// last-resort limit: the output closes as the process exits).
const REAP_LIMIT: Duration = Duration::from_secs(60);
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
/// What the kernel prints as it starts the initramfs's /init (the agent).
const INIT_LINE: &str = "Run /init as init process";
/// What the agent prints on the console once it listens on vsock
/// (`agent/src/main.rs`): the guest's userspace runs.
const AGENT_LINE: &str = "podvm-agent: listening on";

/// `PODVM_GUEST_DIR` (as for the end-to-end tests), else `target/guest`.
fn guest_dir() -> PathBuf {
    std::env::var_os("PODVM_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guest"))
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
    /// When the last of the driver lines above appeared.
    drivers_up_at: Option<Duration>,
    /// When the kernel started /init ([`INIT_LINE`]).
    init_at: Option<Duration>,
    /// When the agent said it listens ([`AGENT_LINE`]), after /init started.
    agent_at: Option<Duration>,
    /// When the latest line came, and the longest time without a line
    /// (how near the run came to [`PATIENCE`]'s stall limit).
    last_at: Duration,
    longest_quiet: Duration,
}

impl Seen {
    fn add(&mut self, line: Line, at: Duration) {
        self.longest_quiet = self.longest_quiet.max(at.saturating_sub(self.last_at));
        self.last_at = self.last_at.max(at);
        match line {
            Line::Serial(text) => {
                if text.contains(VDA_LINE) {
                    self.vda_at.get_or_insert(at);
                }
                if text.contains(INIT_LINE) {
                    self.init_at.get_or_insert(at);
                }
                if self.init_at.is_some() && text.contains(AGENT_LINE) {
                    self.agent_at.get_or_insert(at);
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
        if self.drivers_up_at.is_none() && self.drivers_up() {
            self.drivers_up_at = Some(at);
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

/// How the run ended.
enum End {
    /// The VMM exited by itself.
    Exited(ExitStatus),
    /// The agent came up (a host whose KVM runs Linux userspace); the test
    /// then killed the VMM.
    AgentUp,
    /// No end event: the test gave up and killed the VMM.
    GaveUp(GaveUp),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(status) => write!(f, "exited with {status}"),
            Self::AgentUp => write!(f, "killed by the test once the agent listened"),
            Self::GaveUp(why) => write!(f, "killed by the test, {why}"),
        }
    }
}

/// Kills `child` and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Reaps `child`, which closed its output; kills it and panics should it
/// still run after [`REAP_LIMIT`].
fn reap(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for podvm-vmm") {
            return status;
        }
        if started.elapsed() > REAP_LIMIT {
            kill(child);
            panic!("podvm-vmm closed its output but still ran {REAP_LIMIT:?} later");
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
    let waited = wait_on_progress(&rx, PATIENCE, |line| {
        seen.add(line, started.elapsed());
        seen.agent_at.map(|_| ())
    });
    let end = match waited {
        Waited::Closed => End::Exited(reap(&mut child)),
        Waited::Done(()) => {
            kill(&mut child);
            End::AgentUp
        }
        Waited::GaveUp(why) => {
            kill(&mut child);
            End::GaveUp(why)
        }
    };
    for reader in readers {
        reader.join().expect("pipe reader");
    }
    while let Ok(line) = rx.try_recv() {
        seen.add(line, started.elapsed());
    }
    eprintln!("{}", seen.dump());
    if let End::GaveUp(why) = &end {
        panic!(
            "podvm-vmm neither exited nor brought its agent up ({why}); the drivers were \
             up after {:?}, /init started after {:?} (its output is above)",
            seen.drivers_up_at, seen.init_at
        );
    }

    for (wanted, at) in DRIVER_OK_LINES.iter().zip(seen.driver_ok_at) {
        let at = at.unwrap_or_else(|| panic!("no '{wanted}' in the VMM log:\n{}", seen.dump()));
        podvm_testsupport::note(test, &format!("{wanted} after {at:?}"));
    }
    let vda = seen
        .vda_at
        .unwrap_or_else(|| panic!("no '{VDA_LINE}' on the serial console:\n{}", seen.dump()));
    let drivers_up = seen
        .drivers_up_at
        .expect("set when the last driver line came");
    podvm_testsupport::note(
        test,
        &format!("kernel log '{VDA_LINE}' after {vda:?}; all drivers up after {drivers_up:?}"),
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

    check_end(test, &end, &seen, started.elapsed());
}

/// How the run ended. On kvm_pvm (host-notes): PID 1's first `syscall`
/// comes back to user mode at a kernel address, `init[1]: segfault`, the
/// kernel panics ("Attempted to kill init"), and `panic=-1` reboots at
/// once; with `reboot=k` that is an i8042 reset, which the VMM reports as
/// a guest-requested stop: exit status 0. Elsewhere the agent runs as
/// PID 1 and keeps running; the test kills the VMM once it listens.
fn check_end(test: &str, end: &End, seen: &Seen, elapsed: Duration) {
    let init = seen
        .init_at
        .map_or("never".to_string(), |at| format!("after {at:?}"));
    podvm_testsupport::note(
        test,
        &format!(
            "/init started {init}; podvm-vmm {end}, {elapsed:?} after spawn; longest time \
             without a line {:?} (stall limit {:?})",
            seen.longest_quiet, PATIENCE.stall
        ),
    );
    let serial = |text: &str| seen.serial.iter().any(|l| l.contains(text));
    let log = |text: &str| seen.log.iter().any(|l| l.contains(text));
    assert!(
        serial(INIT_LINE),
        "the kernel never started /init:\n{}",
        seen.dump()
    );
    if !Path::new("/sys/module/kvm_pvm").exists() {
        assert!(
            matches!(end, End::AgentUp)
                || matches!(end, End::Exited(status) if status.code() == Some(0)),
            "the guest should run its agent (killed by the test) or reset, got {end}:\n{}",
            seen.dump()
        );
        return;
    }
    let End::Exited(status) = end else {
        panic!(
            "on kvm_pvm the guest should die at /init's first syscall, but {end}:\n{}",
            seen.dump()
        )
    };
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
