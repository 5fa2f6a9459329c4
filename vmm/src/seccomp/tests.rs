use super::*;

#[test]
fn every_filter_compiles_to_bpf() {
    for kind in ThreadKind::ALL {
        let program = kind.program().unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(!program.is_empty(), "{kind}");
        // The classic-BPF limit the kernel enforces.
        assert!(
            program.len() <= 4096,
            "{kind}: {} instructions",
            program.len()
        );
    }
    Filters::new().unwrap();
}

#[test]
fn kvm_ioctl_numbers_are_the_uapi_ones() {
    // include/uapi/linux/kvm.h: _IO(KVMIO, 0x80), _IOR(KVMIO, 0x81, struct kvm_regs).
    assert_eq!(vcpu::kvm_ioctls(), [0xAE80, 0x8090_AE81]);
}

#[test]
fn only_vcpus_ioctl_kvm_and_only_main_kicks_and_unlinks() {
    let ioctl_rules = |rules: &Rules| rules.get(&libc::SYS_ioctl).map(Vec::len);
    assert_eq!(ioctl_rules(&vcpu::rules()), Some(3));
    assert_eq!(ioctl_rules(&devices::rules()), Some(1));
    assert_eq!(ioctl_rules(&main_thread::rules()), None);
    for kind in ThreadKind::ALL {
        let rules = kind.rules();
        for forbidden in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_clone,
            libc::SYS_fork,
            libc::SYS_ptrace,
            libc::SYS_bind,
            libc::SYS_listen,
        ] {
            assert!(!rules.contains_key(&forbidden), "{kind}: {forbidden}");
        }
        for main_only in [libc::SYS_tgkill, libc::SYS_unlink] {
            assert_eq!(
                rules.contains_key(&main_only),
                kind == ThreadKind::Main,
                "{kind}: {main_only}"
            );
        }
    }
}

/// Forks a child that installs `kind`'s filter and makes `syscall` (with
/// zero arguments), then exits 7; returns the child's wait status.
fn run_in_filtered_child(kind: ThreadKind, syscall: libc::c_long) -> libc::c_int {
    let program = kind.program().unwrap();
    // SAFETY: the child only calls async-signal-safe functions (prctl,
    // seccomp, a raw syscall, _exit) on memory allocated before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        if install(&program).is_err() {
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(99) };
        }
        // SAFETY: a syscall with zero arguments touches no memory of ours.
        unsafe { libc::syscall(syscall, 0, 0, 0) };
        // SAFETY: as above.
        unsafe { libc::_exit(7) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child into a local.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    status
}

#[test]
fn a_forbidden_syscall_kills_the_process_with_sigsys() {
    for kind in ThreadKind::ALL {
        let status = run_in_filtered_child(kind, libc::SYS_openat);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "{kind}: openat left wait status {status:#x}"
        );
    }
    // A vCPU thread may not ioctl anything but its own requests.
    let status = run_in_filtered_child(ThreadKind::Vcpu, libc::SYS_ioctl);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS);
}

#[test]
fn an_allowed_syscall_goes_through() {
    for kind in ThreadKind::ALL {
        let status = run_in_filtered_child(kind, libc::SYS_getpid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7,
            "{kind}: wait status {status:#x}"
        );
    }
}
