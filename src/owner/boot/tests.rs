use std::cell::RefCell;

use super::*;
use crate::owner::fakes::{plan, FailAt, FakeAgent, FakeDialer, FakeHypervisor};

/// Boots with a failure at `at` (in the hypervisor, the dial, the agent or
/// the recording of the VM); returns the outcome and the VM it recorded.
fn boot_failing(
    at: FailAt,
    record_fails: bool,
) -> (
    Result<Booted, BootError>,
    Option<VmRecord>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor { fail: at };
    let dialer = FakeDialer {
        agent: Arc::new(FakeAgent {
            fail: at,
            ..Default::default()
        }),
    };
    let recorded = RefCell::new(None);
    let mut record = |vm: &VmRecord| {
        *recorded.borrow_mut() = Some(vm.clone());
        if record_fails {
            anyhow::bail!("disk full")
        }
        Ok(())
    };
    let outcome = boot(&plan(dir.path()), &hv, &dialer, &mut record);
    (outcome, recorded.into_inner(), dir)
}

#[test]
fn a_boot_that_fails_at_any_step_leaves_nothing_running() {
    for (at, record_fails, step) in [
        (FailAt::Start, false, BootStep::StartVm),
        (FailAt::Nowhere, true, BootStep::RecordVm),
        (FailAt::Dial, false, BootStep::ConnectAgent),
        (FailAt::Create, false, BootStep::CreateSandbox),
        (FailAt::Status, false, BootStep::ReadStatus),
    ] {
        let (outcome, vm, _dir) = boot_failing(at, record_fails);
        let Err(e) = outcome else {
            panic!("{at:?}: the boot should fail")
        };
        assert_eq!(e.step, step, "{at:?}: {e}");
        match vm {
            None => assert_eq!(step, BootStep::StartVm, "only a failed start records no VM"),
            Some(vm) => {
                assert!(
                    vm.processes.iter().all(|p| !p.is_alive()),
                    "{at:?}: the VM process was stopped"
                );
                assert!(!vm.vsock_uds.exists(), "{at:?}: the socket was removed");
                assert!(
                    e.message.contains("fake kernel line 2"),
                    "{at:?}: the console's end is quoted: {}",
                    e.message
                );
            }
        }
    }
}

#[test]
fn reasons_name_the_failed_step() {
    let (outcome, _, _dir) = boot_failing(FailAt::Create, false);
    let e = outcome.err().unwrap();
    assert_eq!(e.reason, FailureReason::SandboxCreateFailed);
    assert!(
        e.message.starts_with(
            "the agent could not create the sandbox: agent: fake agent refuses CreateSandbox"
        ),
        "{}",
        e.message
    );
}

#[test]
fn a_good_boot_leaves_the_vm_running() {
    let (outcome, vm, _dir) = boot_failing(FailAt::Nowhere, false);
    let booted = outcome.unwrap();
    assert!(booted.vm.is_running());
    assert!(booted.status.sandbox_ready);
    assert_eq!(vm.unwrap(), booted.vm);
    booted.vm.stop(Duration::ZERO);
}

/// The fake hypervisor, remembering the configuration it was given.
struct Recording {
    inner: FakeHypervisor,
    config: RefCell<Option<crate::hypervisor::VmConfig>>,
}

impl Hypervisor for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn start(&self, config: &crate::hypervisor::VmConfig) -> anyhow::Result<VmRecord> {
        *self.config.borrow_mut() = Some(config.clone());
        self.inner.start(config)
    }
}

fn recording() -> Recording {
    Recording {
        inner: FakeHypervisor {
            fail: FailAt::Nowhere,
        },
        config: RefCell::new(None),
    }
}

#[test]
fn scratch_disks_are_made_in_the_vm_folder_and_attached_writable() {
    if crate::scratch::require_mkfs().is_err() {
        podvm_testsupport::skip(
            "scratch_disks_are_made_in_the_vm_folder_and_attached_writable",
            "mkfs.ext4 is not installed (e2fsprogs)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan(dir.path());
    plan.scratch_disks = vec![
        crate::scratch::ScratchDisk::new(0, None),
        crate::scratch::ScratchDisk::new(1, Some(1 << 20)),
    ];
    let hv = recording();
    let dialer = FakeDialer {
        agent: Arc::new(FakeAgent::default()),
    };
    let booted = boot(&plan, &hv, &dialer, &mut |_| Ok(())).unwrap();
    booted.vm.stop(Duration::ZERO);
    let config = hv.config.into_inner().expect("the VM was started");
    let disks: Vec<_> = config
        .disks
        .iter()
        .map(|d| (d.serial.as_str(), d.read_only, d.path.clone()))
        .collect();
    let vm_dir = dir.path().join("vm");
    assert_eq!(
        disks,
        [
            ("podvm-ed0", false, vm_dir.join("podvm-ed0.ext4")),
            ("podvm-ed1", false, vm_dir.join("podvm-ed1.ext4")),
        ]
    );
    assert_eq!(
        std::fs::metadata(vm_dir.join("podvm-ed1.ext4"))
            .unwrap()
            .len(),
        65 << 20
    );
    assert!(plan.vm.disks.is_empty(), "the plan itself is unchanged");
}

#[test]
fn a_scratch_disk_that_cannot_be_made_stops_the_boot_before_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan(dir.path());
    // Larger than any file a filesystem here takes (or mkfs.ext4 missing):
    // either way the VM must not start.
    plan.scratch_disks = vec![crate::scratch::ScratchDisk {
        serial: "podvm-ed0".into(),
        size_bytes: u64::MAX,
    }];
    let hv = recording();
    let dialer = FakeDialer {
        agent: Arc::new(FakeAgent::default()),
    };
    let Err(e) = boot(&plan, &hv, &dialer, &mut |_| Ok(())) else {
        panic!("the boot should fail")
    };
    assert_eq!(e.step, BootStep::PrepareDisks, "{e}");
    assert_eq!(e.reason, FailureReason::VmStartFailed);
    assert!(
        e.message
            .starts_with("cannot prepare the pod's scratch disks: "),
        "{}",
        e.message
    );
    assert!(hv.config.into_inner().is_none(), "no VM was started");
}
