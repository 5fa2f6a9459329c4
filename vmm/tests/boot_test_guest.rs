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

mod common;

use std::path::Path;

use common::{assert_ok_lines, path_str, podvm_vmm, prerequisites, Boot};

#[test]
fn test_guest_verifies_boot_protocol_and_reset_exits_zero() {
    let Some(guest) = prerequisites(
        "test_guest_verifies_boot_protocol_and_reset_exits_zero",
        Boot::Linux64,
    ) else {
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
    assert_ok_lines(
        &run,
        &[
            "rsi",
            "zero-page",
            "cmdline",
            "e820",
            "initrd",
            "gdt",
            "control-registers",
            "page-tables",
            "cpuid",
            "mptable",
            "smp",
            "virtio-mmio",
        ],
    );
    assert!(run.stdout.contains("smp: cpu 1 started"));
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
fn pvh_note_boots_through_pvh_with_start_info_memmap_and_initrd() {
    let test = "pvh_note_boots_through_pvh_with_start_info_memmap_and_initrd";
    let Some(guest) = prerequisites(test, Boot::Pvh) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&initrd, b"PODVM-PVH-INITRD and more").expect("write initrd");
    let disk = dir.path().join("disk.img");
    let mut image = vec![0u8; 4096];
    image[..15].copy_from_slice(b"PODVM-PVH-DISK!");
    std::fs::write(&disk, &image).expect("write disk");
    let disk_arg = format!("path={},ro=true,serial=pvh-disk", path_str(&disk));
    let run = podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--initrd",
        path_str(&initrd),
        "--disk",
        &disk_arg,
        "--memory-mib",
        "4200",
        "--cmdline",
        "testguest.mem_mib=4200 testguest.initrd=PODVM-PVH-INITRD testguest.virtio=2 \
         testguest.blk=1",
    ]);
    assert!(
        run.stdout.contains("podvm-test-guest: booted (pvh)"),
        "entered through PVH:\n{}",
        run.stdout
    );
    assert_ok_lines(
        &run,
        &[
            "pvh-entry",
            "pvh-gdt",
            "start-info",
            "cmdline",
            "pvh-memmap",
            "initrd",
            "cpuid",
            "mptable",
            "virtio-mmio",
            "virtio-blk",
        ],
    );
    assert!(run.stdout.contains("blk sector0: PODVM-PVH-DISK!"));
    // 4200 MiB: the memory map has a third range above the 3-4 GiB hole.
    assert!(run.stdout.contains("pvh-memmap: 0x100000000+"));
    assert!(run.stdout.contains("podvm-test-guest: all checks passed"));
    assert_eq!(run.status.code(), Some(0), "reset is a requested stop");
}

#[test]
fn bzimage_boots_through_its_64_bit_entry_with_the_header_in_the_zero_page() {
    let test = "bzimage_boots_through_its_64_bit_entry_with_the_header_in_the_zero_page";
    let Some(guest) = prerequisites(test, Boot::Linux64) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let elf = std::fs::read(guest).expect("read the test guest");
    let bzimage = dir.path().join("bzImage");
    std::fs::write(&bzimage, common::bzimage::from_elf(&elf, 0x020f)).expect("write bzImage");
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&initrd, b"PODVM-BZ-INITRD").expect("write initrd");
    let run = podvm_vmm(&[
        "--kernel",
        path_str(&bzimage),
        "--initrd",
        path_str(&initrd),
        "--memory-mib",
        "64",
        "--log-level",
        "info",
        "--cmdline",
        "testguest.mem_mib=64 testguest.initrd=PODVM-BZ-INITRD testguest.zero_page_version=0x20f",
    ]);
    assert!(
        run.stderr
            .contains("kernel: BzImage image, linux-64bit boot protocol"),
        "{}",
        run.stderr
    );
    assert_ok_lines(
        &run,
        &[
            "rsi",
            "zero-page",
            "setup-header",
            "cmdline",
            "e820",
            "initrd",
            "page-tables",
        ],
    );
    assert!(run.stdout.contains("podvm-test-guest: all checks passed"));
    assert_eq!(run.status.code(), Some(0));
    // A bzImage without the 64-bit entry is refused, saying why.
    let mut old = common::bzimage::from_elf(&elf, 0x020f);
    old[0x236] = 0;
    let old_path = dir.path().join("bzImage-32");
    std::fs::write(&old_path, old).expect("write bzImage");
    let refused = podvm_vmm(&["--kernel", path_str(&old_path)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        refused.stderr.contains("XLF_KERNEL_64"),
        "{}",
        refused.stderr
    );
}

#[test]
fn debug_exit_status_is_a_requested_stop_with_failure() {
    let Some(guest) = prerequisites(
        "debug_exit_status_is_a_requested_stop_with_failure",
        Boot::Linux64,
    ) else {
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
    let Some(guest) = prerequisites("guest_crash_exits_two_and_says_why", Boot::Linux64) else {
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
    let Some(guest) = prerequisites("test_guest_reads_a_disk_through_virtio_blk", Boot::Linux64)
    else {
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
    let Some(guest) = prerequisites(
        "seccomp_filters_are_on_by_default_and_off_only_when_asked",
        Boot::Linux64,
    ) else {
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
