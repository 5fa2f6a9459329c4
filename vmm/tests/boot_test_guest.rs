//! Boots the no_std test guest (`vmm/test-guest`) with the `podvm-vmm`
//! binary on this machine's KVM: the guest checks the boot protocol state
//! it received (zero page, command line, e820, initrd, GDT, page tables,
//! CPUID, the virtio-mmio window declared on the command line), reports
//! over the serial port, and stops the VM in the way the
//! command line asks, which the exit status must reflect.
//!
//! Needs `/dev/kvm` and the `x86_64-unknown-none` Rust target
//! (`rustup target add x86_64-unknown-none`); without them each test
//! prints a loud SKIP line and passes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one VM may run before the test kills it.
const VM_DEADLINE: Duration = Duration::from_secs(60);

fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-guest")
}

/// Builds the test guest once; `Err` says why it cannot be built here.
fn test_guest() -> Result<&'static Path, String> {
    static GUEST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            let sysroot = Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .map_err(|e| format!("cannot run rustc: {e}"))?;
            let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
            let target_lib = Path::new(&sysroot).join("lib/rustlib/x86_64-unknown-none");
            if !target_lib.exists() {
                return Err("the x86_64-unknown-none target is not installed \
                     (rustup target add x86_64-unknown-none)"
                    .into());
            }
            let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-guest");
            let cargo = option_env!("CARGO").unwrap_or("cargo");
            let output = Command::new(cargo)
                .current_dir(guest_dir())
                .args(["build", "--release", "--target", "x86_64-unknown-none"])
                .arg("--target-dir")
                .arg(&target_dir)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_BUILD_RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET")
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !output.status.success() {
                // A target that is installed but does not build is a failure, not a skip.
                panic!(
                    "building the test guest failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(target_dir.join("x86_64-unknown-none/release/podvm-test-guest"))
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The guest image, or `None` after printing why the test is skipped.
fn prerequisites(test: &str) -> Option<&'static Path> {
    if !Path::new("/dev/kvm").exists() {
        podvm_testsupport::skip(test, "/dev/kvm is absent on this machine");
        return None;
    }
    match test_guest() {
        Ok(path) => Some(path),
        Err(why) => {
            podvm_testsupport::skip(test, &why);
            None
        }
    }
}

/// What a VM run left behind.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Time from spawning the VMM to its first byte on stdout.
    first_stdout_byte: Option<Duration>,
}

/// Waits for `child` under [`VM_DEADLINE`], reading stdout as it comes.
fn finish(mut child: Child, started: Instant) -> Run {
    let mut stdout_pipe = child.stdout.take().expect("stdout piped");
    let reader = std::thread::spawn(move || {
        let mut first = None;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            first.get_or_insert_with(|| started.elapsed());
            all.extend_from_slice(&buf[..n]);
        }
        (first, all)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for podvm-vmm") {
            break status;
        }
        if started.elapsed() > VM_DEADLINE {
            let _ = child.kill();
            panic!("podvm-vmm still running after {VM_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (first_stdout_byte, stdout) = reader.join().expect("stdout reader");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
        first_stdout_byte,
    }
}

/// Runs `podvm-vmm run` with `args`.
fn podvm_vmm(args: &[&str]) -> Run {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_podvm-vmm"))
        .arg("run")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn podvm-vmm");
    let run = finish(child, started);
    eprintln!(
        "podvm-vmm {args:?}: {} in {:?}\n--- stdout\n{}--- stderr\n{}",
        run.status,
        started.elapsed(),
        run.stdout,
        run.stderr
    );
    run
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn test_guest_verifies_boot_protocol_and_reset_exits_zero() {
    let Some(guest) = prerequisites("test_guest_verifies_boot_protocol_and_reset_exits_zero")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&initrd, b"PODVM-INITRD-MAGIC and then some bytes").expect("write initrd");
    let run = podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--initrd",
        path_str(&initrd),
        "--memory-mib",
        "96",
        "--vcpus",
        "2",
        "--rng",
        "--cmdline",
        "console=ttyS0 testguest.mem_mib=96 testguest.vcpus=2 testguest.initrd=PODVM-INITRD-MAGIC \
         testguest.virtio=4",
    ]);
    for check in [
        "rsi",
        "zero-page",
        "cmdline",
        "e820",
        "initrd",
        "gdt",
        "control-registers",
        "page-tables",
        "cpuid",
        "virtio-mmio",
    ] {
        assert!(
            run.stdout.contains(&format!("ok {check}\n")),
            "check {check} did not pass:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("virtio_mmio.device=4K@0xd0000000:5"));
    assert!(
        run.stdout.contains("testguest.virtio=4 reboot=k "),
        "reboot=k is appended to a command line without it"
    );
    assert!(run.stdout.contains("podvm-test-guest: all checks passed"));
    assert_eq!(run.status.code(), Some(0), "reset is a requested stop");
    let first = run.first_stdout_byte.expect("serial output");
    eprintln!("VMM start → first serial byte: {first:?}");
}

#[test]
fn debug_exit_status_is_a_requested_stop_with_failure() {
    let Some(guest) = prerequisites("debug_exit_status_is_a_requested_stop_with_failure") else {
        return;
    };
    let ok = podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--memory-mib",
        "32",
        "--cmdline",
        "testguest.mem_mib=32 testguest.end=exit:0",
    ]);
    assert_eq!(ok.status.code(), Some(0));
    let failed = podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--memory-mib",
        "32",
        "--cmdline",
        "testguest.mem_mib=32 testguest.end=exit:5",
    ]);
    assert!(failed.stdout.contains("all checks passed"));
    assert_eq!(failed.status.code(), Some(3));
}

#[test]
fn guest_crash_exits_two_and_says_why() {
    let Some(guest) = prerequisites("guest_crash_exits_two_and_says_why") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let serial = dir.path().join("serial.log");
    let config = dir.path().join("vm.json");
    let json = serde_json::json!({
        "kernel": guest,
        "memory_mib": 48,
        "cmdline": "testguest.mem_mib=48 testguest.end=crash",
        "serial": format!("file:{}", serial.display()),
    });
    std::fs::write(&config, json.to_string()).expect("write config");
    let run = podvm_vmm(&["--config", path_str(&config)]);
    assert_eq!(run.status.code(), Some(2), "a triple fault is a crash");
    assert!(run.stderr.contains("triple fault"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "serial went to the file");
    let log = std::fs::read_to_string(&serial).expect("serial file");
    assert!(log.contains("all checks passed"), "{log}");
}

#[test]
fn bad_kernel_is_a_vmm_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk");
    std::fs::write(&junk, [0u8; 4096]).expect("write junk");
    let run = podvm_vmm(&["--kernel", path_str(&junk), "--serial", "off"]);
    assert_eq!(run.status.code(), Some(1));
    if Path::new("/dev/kvm").exists() {
        assert!(run.stderr.contains("kernel image"), "{}", run.stderr);
    }
}

#[test]
fn test_guest_reads_a_disk_through_virtio_blk() {
    let Some(guest) = prerequisites("test_guest_reads_a_disk_through_virtio_blk") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.img");
    let mut content = b"PODVM-DISK-SECTOR0 hello world!!".to_vec();
    content.resize(512 * 8, 0);
    std::fs::write(&disk, &content).expect("write disk");
    let other = dir.path().join("other.img");
    std::fs::write(&other, [0u8; 512]).expect("write disk");
    let run = podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--memory-mib",
        "32",
        "--rng",
        "--disk",
        &format!("path={},ro=true,serial=podvm-disk-1", path_str(&disk)),
        "--disk",
        &format!("path={}", path_str(&other)),
        "--cmdline",
        "testguest.mem_mib=32 testguest.blk=1",
    ]);
    assert!(run.stdout.contains("ok virtio-blk\n"), "{}", run.stdout);
    assert!(run.stdout.contains("blk capacity: 8 sectors"));
    assert!(run
        .stdout
        .contains("blk sector0: PODVM-DISK-SECTOR0 hello world!!"));
    assert!(run.stdout.contains("blk serial: podvm-disk-1........"));
    assert!(
        !run.stderr.contains("no ioeventfd"),
        "queue notifies went through KVM ioeventfds: {}",
        run.stderr
    );
    assert_eq!(run.status.code(), Some(0));
}

#[test]
fn seccomp_filters_are_on_by_default_and_off_only_when_asked() {
    let Some(guest) = prerequisites("seccomp_filters_are_on_by_default_and_off_only_when_asked")
    else {
        return;
    };
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "--kernel",
            path_str(guest),
            "--memory-mib",
            "32",
            "--cmdline",
            "testguest.mem_mib=32 testguest.end=exit:0",
            "--log-level",
            "debug",
        ];
        args.extend_from_slice(extra);
        args
    };
    let installed = "seccomp filters installed on every VMM thread";
    let default = podvm_vmm(&args(&[]));
    assert_eq!(default.status.code(), Some(0));
    assert!(default.stderr.contains(installed), "{}", default.stderr);
    let on = podvm_vmm(&args(&["--seccomp", "on"]));
    assert_eq!(on.status.code(), Some(0));
    assert!(on.stderr.contains(installed));

    let off = podvm_vmm(&args(&["--seccomp", "off"]));
    assert_eq!(off.status.code(), Some(0));
    assert!(!off.stderr.contains(installed));
    assert!(off.stderr.contains("WARN") && off.stderr.contains("seccomp is off"));

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vm.json");
    let json = serde_json::json!({
        "kernel": path_str(guest),
        "memory_mib": 32,
        "cmdline": "testguest.mem_mib=32 testguest.end=exit:0",
        "seccomp": false,
    });
    std::fs::write(&config, json.to_string()).expect("write config");
    let from_json = podvm_vmm(&["--config", path_str(&config), "--log-level", "debug"]);
    assert_eq!(from_json.status.code(), Some(0));
    assert!(from_json.stderr.contains("seccomp is off"));
    let flag_wins = podvm_vmm(&[
        "--config",
        path_str(&config),
        "--seccomp",
        "on",
        "--log-level",
        "debug",
    ]);
    assert_eq!(flag_wins.status.code(), Some(0));
    assert!(flag_wins.stderr.contains(installed));

    // Tearing down a vsock device removes its socket file, on the main
    // thread, under its filter.
    let uds = dir.path().join("v.sock");
    let uds_arg = format!("uds={}", path_str(&uds));
    let mut with_vsock = args(&[]);
    with_vsock.extend_from_slice(&["--vsock", &uds_arg, "--rng", "--disk"]);
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 4096]).expect("write disk");
    let disk_arg = format!("path={}", path_str(&disk));
    with_vsock.push(&disk_arg);
    let vsock = podvm_vmm(&with_vsock);
    assert_eq!(vsock.status.code(), Some(0), "{}", vsock.stderr);
    assert!(vsock.stderr.contains(installed));
    assert!(!uds.exists(), "the vsock socket file is removed at exit");

    let bad = podvm_vmm(&args(&["--seccomp", "maybe"]));
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("is not on or off"), "{}", bad.stderr);
}
