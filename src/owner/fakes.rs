//! Test doubles for the owner's seams: a hypervisor whose "VM" is a real
//! `sleep` process with a console file and a socket path (so cleanup can
//! be checked on real things), and an agent that fails where told to.
#![cfg(test)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podvm_proto::{ClientError, EventBatch, SandboxSpec, SandboxStatus};

use super::link::{AgentDialer, AgentLink};
use crate::hypervisor::{Hypervisor, TrackedProcess, VmConfig, VmRecord};

/// Where a fake boot fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailAt {
    #[default]
    Nowhere,
    Start,
    Dial,
    Create,
    Status,
}

pub struct FakeHypervisor {
    pub fail: FailAt,
}

impl Hypervisor for FakeHypervisor {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn start(&self, config: &VmConfig) -> anyhow::Result<VmRecord> {
        if self.fail == FailAt::Start {
            anyhow::bail!("fake hypervisor refuses to start");
        }
        let console = config.run_dir.join("console.log");
        std::fs::write(&console, "fake kernel line 1\nfake kernel line 2\n")?;
        let vsock = config.run_dir.join("vsock.sock");
        std::fs::write(&vsock, "")?;
        let mut cmd = Command::new("sleep");
        cmd.arg("1000");
        let vm = TrackedProcess::spawn("fake-vm", cmd, &config.run_dir.join("vm.log"))?;
        Ok(VmRecord {
            hypervisor: "fake".into(),
            accel: "none".into(),
            vsock_uds: vsock,
            console_log: console,
            run_dir: config.run_dir.clone(),
            processes: vec![vm],
        })
    }
}

#[derive(Default)]
pub struct FakeAgent {
    pub fail: FailAt,
    pub stops: AtomicUsize,
    pub shutdowns: AtomicUsize,
}

fn refused(what: &str) -> ClientError {
    ClientError::Rpc {
        code: podvm_proto::Code::INTERNAL,
        message: format!("fake agent refuses {what}"),
    }
}

impl AgentLink for FakeAgent {
    fn create_sandbox(&self, _: &SandboxSpec, _: Duration) -> Result<(), ClientError> {
        match self.fail {
            FailAt::Create => Err(refused("CreateSandbox")),
            _ => Ok(()),
        }
    }

    fn status(&self) -> Result<SandboxStatus, ClientError> {
        match self.fail {
            FailAt::Status => Err(refused("GetSandboxStatus")),
            _ => Ok(SandboxStatus {
                sandbox_ready: true,
                ..Default::default()
            }),
        }
    }

    fn events(&self, _: u64, generation: u64) -> Result<EventBatch, ClientError> {
        // A long poll with nothing new.
        std::thread::sleep(Duration::from_millis(20));
        Ok(EventBatch {
            events: Vec::new(),
            status: self.status()?,
            status_generation: generation.max(1),
        })
    }

    fn stop_sandbox(&self, _: Duration, _: Duration) -> Result<(), ClientError> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn shutdown(&self) -> Result<(), ClientError> {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub struct FakeDialer {
    pub agent: Arc<FakeAgent>,
}

impl AgentDialer for FakeDialer {
    fn dial(&self, vm: &VmRecord, _deadline: Instant) -> anyhow::Result<Arc<dyn AgentLink>> {
        if self.agent.fail == FailAt::Dial {
            anyhow::bail!("nothing listens on vsock port 1024");
        }
        if !vm.is_running() {
            anyhow::bail!("the VM is not running");
        }
        Ok(Arc::clone(&self.agent) as Arc<dyn AgentLink>)
    }
}

/// A launch plan for the fake hypervisor (its VM runs under `dir/vm`).
pub fn plan(dir: &std::path::Path) -> super::plan::LaunchPlan {
    super::plan::LaunchPlan {
        sandbox: SandboxSpec {
            name: "web".into(),
            namespace: "default".into(),
            uid: "u".into(),
            hostname: "web".into(),
            host_aliases: vec![],
            restart_policy: podvm_proto::RestartPolicy::Always,
            termination_grace_period_seconds: 1,
            init_containers: vec![],
            containers: vec![],
            active_deadline_seconds: None,
            volumes: vec![],
        },
        vm: VmConfig {
            kernel: "/nonexistent/vmlinux".into(),
            initrd: "/nonexistent/initrd".into(),
            cmdline: String::new(),
            memory_mib: 64,
            vcpus: 1,
            disks: vec![],
            run_dir: dir.join("vm"),
        },
        scratch_disks: vec![],
        hypervisor: crate::hypervisor::HypervisorKind::Qemu,
        boot_timeout_secs: 5,
    }
}

/// Waits (on progress, with a last-resort limit) until `done`.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let limit = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
