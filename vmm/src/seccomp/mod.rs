//! Least privilege: one seccomp-BPF allow-list per thread kind, built with
//! `seccompiler` and installed by each thread once its setup is done (every
//! file, socket and KVM fd it will use is already open).
//!
//! - [`vcpu`]: `KVM_RUN` and the few other ioctls a running vCPU makes, plus
//!   what the devices it exits into do (serial output, a QueueNotify that
//!   still exits to the VMM, a device reset).
//! - [`devices`]: the device event loop: epoll, eventfds, disk I/O, the
//!   vsock Unix sockets, `getrandom` for virtio-rng.
//! - [`main_thread`]: the VMM thread once the VM runs: waiting for a stop,
//!   kicking and joining vCPU threads, tearing the VM down, exiting.
//!
//! Anything else kills the whole process (`SECCOMP_RET_KILL_PROCESS`, the
//! kernel reports `SIGSYS`), so a compromised device model cannot open
//! files, create processes or reach the network.

pub mod devices;
pub mod main_thread;
pub mod vcpu;

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Errors while building or installing a filter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filter could not be built or compiled to BPF.
    #[error("seccomp filter for the {0} thread: {1}")]
    Build(ThreadKind, seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("installing the seccomp filter: {0}")]
    Install(seccompiler::Error),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The kinds of VMM thread, each with its own filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// The main (VMM) thread once the VM runs.
    Main,
    /// A vCPU thread.
    Vcpu,
    /// The device event-loop thread.
    Devices,
}

impl ThreadKind {
    /// Every kind.
    pub const ALL: [ThreadKind; 3] = [ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Devices];

    fn rules(self) -> Rules {
        match self {
            ThreadKind::Main => main_thread::rules(),
            ThreadKind::Vcpu => vcpu::rules(),
            ThreadKind::Devices => devices::rules(),
        }
    }

    /// This kind's filter compiled to BPF.
    pub fn program(self) -> Result<BpfProgram> {
        let filter = SeccompFilter::new(
            self.rules(),
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            TargetArch::x86_64,
        )
        .map_err(|e| Error::Build(self, e))?;
        filter.try_into().map_err(|e| Error::Build(self, e))
    }
}

impl std::fmt::Display for ThreadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vCPU",
            ThreadKind::Devices => "devices",
        })
    }
}

/// The compiled filters of one VM, built before any thread starts so that
/// a thread only has to install its own.
#[derive(Debug, Clone)]
pub struct Filters {
    /// For the main thread.
    pub main: BpfProgram,
    /// For each vCPU thread.
    pub vcpu: BpfProgram,
    /// For the device event-loop thread.
    pub devices: BpfProgram,
}

impl Filters {
    /// Compiles every filter.
    pub fn new() -> Result<Self> {
        Ok(Self {
            main: ThreadKind::Main.program()?,
            vcpu: ThreadKind::Vcpu.program()?,
            devices: ThreadKind::Devices.program()?,
        })
    }
}

/// Installs `program` on the calling thread (and sets `no_new_privs`).
/// Threads it creates afterwards inherit it.
pub fn install(program: &BpfProgram) -> Result<()> {
    seccompiler::apply_filter(program).map_err(Error::Install)
}

/// Syscall number to the rules that allow it (no rules: always allowed).
pub(crate) type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Allows each of `syscalls` whatever its arguments.
pub(crate) fn allow(rules: &mut Rules, syscalls: &[libc::c_long]) {
    for &nr in syscalls {
        rules.insert(nr, Vec::new());
    }
}

/// Allows `syscall` only when its argument `arg` is one of `values`.
pub(crate) fn allow_arg_in(rules: &mut Rules, syscall: libc::c_long, arg: u8, values: &[u64]) {
    let entry = rules.entry(syscall).or_default();
    for &value in values {
        // Only fails for an argument index above 5, which is a bug here.
        let rule = SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value)
            .and_then(|condition| SeccompRule::new(vec![condition]))
            .unwrap_or_else(|e| panic!("seccomp rule for syscall {syscall}: {e}"));
        entry.push(rule);
    }
}

/// What every thread kind needs: memory, locks, signals, time, stderr
/// logging, leaving.
pub(crate) fn common_rules() -> Rules {
    let mut rules = Rules::new();
    allow(
        &mut rules,
        &[
            // Allocation.
            libc::SYS_brk,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_mremap,
            libc::SYS_madvise,
            libc::SYS_mprotect,
            // Locks, channels, joins.
            libc::SYS_futex,
            libc::SYS_sched_yield,
            // Signals: the vCPU kick and returning from its handler.
            libc::SYS_rt_sigreturn,
            libc::SYS_rt_sigprocmask,
            libc::SYS_sigaltstack,
            libc::SYS_restart_syscall,
            // Time (normally the vDSO) and sleeping.
            libc::SYS_clock_gettime,
            libc::SYS_clock_nanosleep,
            libc::SYS_nanosleep,
            // Logging and the serial console (stdout, stderr or a file
            // opened at setup), reads of already-open fds.
            libc::SYS_write,
            libc::SYS_writev,
            libc::SYS_read,
            libc::SYS_close,
            // std's per-thread hash keys.
            libc::SYS_getrandom,
            libc::SYS_gettid,
            libc::SYS_getpid,
            // Leaving.
            libc::SYS_exit,
            libc::SYS_exit_group,
        ],
    );
    // Debug builds of std check that an fd is open before closing it.
    allow_arg_in(
        &mut rules,
        libc::SYS_fcntl,
        1,
        &[libc::F_GETFD as u64, libc::F_GETFL as u64],
    );
    rules
}

/// What device models do, on the event-loop thread and (for a QueueNotify
/// without ioeventfd, or a device reset) on vCPU threads: eventfds, epoll,
/// disk I/O, the vsock Unix sockets.
pub(crate) fn device_io_rules(rules: &mut Rules) {
    allow(
        rules,
        &[
            // epoll: the event loop's `event_manager::EventManager` waits
            // with `epoll_wait` (vmm-sys-util's `Epoll::wait`; libcs may
            // make it `epoll_pwait`), the vsock muxer changes its own set.
            libc::SYS_epoll_wait,
            libc::SYS_epoll_pwait,
            libc::SYS_epoll_ctl,
            // virtio-blk on files opened at setup.
            libc::SYS_pread64,
            libc::SYS_pwrite64,
            libc::SYS_preadv,
            libc::SYS_pwritev,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_lseek,
            // vsock: host connections in, guest connections out to
            // `<uds>_PORT` (a Unix socket only, see `socket` below).
            libc::SYS_accept4,
            libc::SYS_connect,
            libc::SYS_recvfrom,
            libc::SYS_sendto,
            libc::SYS_recvmsg,
            libc::SYS_sendmsg,
            libc::SYS_shutdown,
            // vsock: the timeout timer (`vsock/deadline.rs`), created at
            // setup, armed here.
            libc::SYS_timerfd_settime,
        ],
    );
    allow_arg_in(rules, libc::SYS_fcntl, 1, &[libc::F_SETFL as u64]);
    allow_arg_in(rules, libc::SYS_socket, 0, &[libc::AF_UNIX as u64]);
    // `set_nonblocking` on vsock streams.
    allow_arg_in(rules, libc::SYS_ioctl, 1, &[libc::FIONBIO]);
}

#[cfg(test)]
mod tests;
