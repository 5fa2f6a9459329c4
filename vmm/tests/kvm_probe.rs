//! The KVM probe against this machine's real `/dev/kvm`.
//!
//! These tests need `/dev/kvm`; without it they print a loud SKIP line and
//! pass. On a `kvm_pvm` host the probe must say "not Linux-capable" while the
//! ring-0 control guest still works, which shows the verdict comes from the
//! ring-3 `syscall` and not from a broken test guest.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use podvm_vmm::probe::{
    open_kvm, probe_kvm, run_guest, GuestOutcome, GuestProgram, DEFAULT_KVM_DEVICE, PVM_MODULE_PATH,
};
use podvm_vmm::Error;

fn kvm_present(test: &str) -> bool {
    let present = Path::new(DEFAULT_KVM_DEVICE).exists();
    if !present {
        podvm_testsupport::skip(
            test,
            &format!("{DEFAULT_KVM_DEVICE} is absent on this machine"),
        );
    }
    present
}

fn pvm_loaded() -> bool {
    Path::new(PVM_MODULE_PATH).exists()
}

/// Hardware virtualization flags, as a plausibility check for real KVM.
fn cpu_has_vmx_or_svm() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
    })
}

#[test]
fn probe_returns_a_definite_verdict_quickly() -> Result<(), Error> {
    if !kvm_present("probe_returns_a_definite_verdict_quickly") {
        return Ok(());
    }
    let started = Instant::now();
    let probe = probe_kvm(Path::new(DEFAULT_KVM_DEVICE))?;
    let wall = started.elapsed();
    eprintln!("probe: {probe:?} (wall {wall:?})");
    assert_eq!(probe.api_version, 12);
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
    assert!(probe.elapsed <= wall);
    assert!(probe.detail.contains("syscall"), "{}", probe.detail);
    if pvm_loaded() {
        assert!(!probe.linux_capable, "kvm_pvm host: {}", probe.detail);
        assert!(probe.detail.contains("did not reach ring 0"));
        assert!(probe.detail.contains("kvm_pvm module loaded"));
    } else if cpu_has_vmx_or_svm() {
        assert!(probe.linux_capable, "hardware KVM: {}", probe.detail);
    }
    Ok(())
}

#[test]
fn ring0_control_guest_reaches_the_marker() -> Result<(), Error> {
    if !kvm_present("ring0_control_guest_reaches_the_marker") {
        return Ok(());
    }
    let kvm = open_kvm(Path::new(DEFAULT_KVM_DEVICE))?;
    let outcome = run_guest(&kvm, GuestProgram::Ring0Marker, Duration::from_secs(2))?;
    eprintln!("ring-0 control: {outcome}");
    assert!(outcome.reached_ring0(), "{outcome}");
    Ok(())
}

#[test]
fn ring3_out_control_faults() -> Result<(), Error> {
    if !kvm_present("ring3_out_control_faults") {
        return Ok(());
    }
    let kvm = open_kvm(Path::new(DEFAULT_KVM_DEVICE))?;
    let outcome = run_guest(&kvm, GuestProgram::Ring3Out, Duration::from_secs(2))?;
    eprintln!("ring-3 out control: {outcome}");
    // The iretq reached ring 3 and the OUT there was refused.
    match outcome {
        GuestOutcome::Shutdown { state: Some(state) } => {
            assert_eq!(state.cs_selector, 0x23, "{outcome}");
            assert_eq!(state.cs_dpl, 3, "{outcome}");
        }
        other => panic!("expected a triple fault in ring 3, got {other}"),
    }
    Ok(())
}

#[test]
fn a_spinning_guest_is_stopped_at_the_deadline() -> Result<(), Error> {
    if !kvm_present("a_spinning_guest_is_stopped_at_the_deadline") {
        return Ok(());
    }
    let kvm = open_kvm(Path::new(DEFAULT_KVM_DEVICE))?;
    let started = Instant::now();
    let outcome = run_guest(&kvm, GuestProgram::Spin, Duration::from_millis(200))?;
    let wall = started.elapsed();
    eprintln!("spin: {outcome} (wall {wall:?})");
    assert!(
        matches!(
            outcome,
            GuestOutcome::Timeout {
                abandoned: false,
                ..
            }
        ),
        "{outcome}"
    );
    assert!(!outcome.reached_ring0());
    assert!(wall < Duration::from_secs(1), "took {wall:?}");
    Ok(())
}

#[test]
fn missing_device_is_an_error() {
    let result = probe_kvm(Path::new("/nonexistent/kvm"));
    assert!(matches!(result, Err(Error::OpenKvm { .. })), "{result:?}");
}

#[test]
fn binary_prints_the_verdict_as_json() -> Result<(), Box<dyn std::error::Error>> {
    if !kvm_present("binary_prints_the_verdict_as_json") {
        return Ok(());
    }
    let output = Command::new(env!("CARGO_BIN_EXE_podvm-vmm"))
        .arg("probe")
        .output()?;
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(json["api_version"], 12);
    assert!(json["linux_capable"].is_boolean());
    assert!(json["detail"].is_string());
    assert!(json["elapsed_ms"].as_f64().is_some_and(|ms| ms < 5000.0));
    if pvm_loaded() {
        assert_eq!(json["linux_capable"], false);
    }
    Ok(())
}
