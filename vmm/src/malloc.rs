//! glibc's allocator under the seccomp filters (`seccomp/`).
//!
//! When a thread frees memory, glibc may give the top of its heap back to
//! the kernel; for the heaps of threads other than the main one
//! (`shrink_heap` in malloc/arena.c) it first reads
//! `/proc/sys/vm/overcommit_memory` once per process, an `openat` that no
//! filter allows: the VMM died of `SIGSYS` in the device thread after a
//! few hundred KiB of vsock traffic (Cloud Hypervisor met the same, see
//! its issue #3609, and allowed `openat`). Rather than let every thread
//! open files, [`confine_allocator`] raises the trim threshold beyond any
//! heap, so glibc never shrinks one: freed memory is kept for reuse, and
//! allocations from 128 KiB up are still separate mappings returned with
//! `munmap`. musl does not read the sysctl.

/// Sets glibc's malloc parameters so that malloc and free stay within the
/// syscalls the seccomp filters allow. Call it at the start of `main`,
/// before any thread is started; returns `false` if glibc refused a
/// the setting (and `true` where the C library is not glibc).
pub fn confine_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes an allocator parameter, here a
        // documented one with an in-range value.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        true
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, ExitStatus, Stdio};

    use super::*;
    use crate::seccomp::{install, ThreadKind};

    /// Set in the environment of the child processes below.
    const CHILD: &str = "PODVM_MALLOC_TEST_CHILD";
    const CHILD_TEST: &str = "malloc::tests::child_frees_memory_under_the_devices_filter";

    /// Only does something in a child process started by the test below
    /// (a fresh process, where glibc has not read the sysctl yet): threads
    /// under the device thread's filter allocate and free enough for glibc
    /// to trim their heaps.
    #[test]
    fn child_frees_memory_under_the_devices_filter() {
        let Ok(mode) = std::env::var(CHILD) else {
            return;
        };
        if mode == "confined" {
            assert!(confine_allocator());
        }
        let program = ThreadKind::Devices.program().expect("devices filter");
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let program = program.clone();
                std::thread::spawn(move || {
                    install(&program).expect("install the filter");
                    for round in 0..50u8 {
                        let chunks: Vec<Vec<u8>> = (0..8).map(|_| vec![round; 96 * 1024]).collect();
                        drop(chunks);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
    }

    fn run_child(mode: &str) -> ExitStatus {
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", CHILD_TEST, "--test-threads=1", "-q"])
            .env(CHILD, mode)
            .stdout(Stdio::null())
            .status()
            .expect("run the child")
    }

    #[test]
    fn freeing_memory_under_the_filters_opens_nothing_once_confined() {
        let confined = run_child("confined");
        assert!(confined.success(), "confined allocator: {confined:?}");
        // Without it glibc opens /proc/sys/vm/overcommit_memory: killed.
        let plain = run_child("plain");
        assert_eq!(
            plain.signal(),
            Some(libc::SIGSYS),
            "the unconfined child should die of SIGSYS: {plain:?}"
        );
    }
}
