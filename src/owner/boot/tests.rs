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
