//! The pod's owner on the host, end to end with real VMs: a VM that dies is
//! recorded `Failed` with a reason at once; an `apply` killed anywhere in
//! the boot still ends `Running` or `Failed`; a killed owner is replaced
//! without a second VM or an orphan; `apply` and `delete` of one pod at the
//! same moment leave a consistent state; `get -w` prints a pod's life.
//! Needs what tests/e2e_pods.rs needs (scripts/test.sh provides it).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{processes_mentioning, require_e2e, Podvm};

/// Last resort for anything a test waits on; progress is what ends waits.
const GENEROUS: Duration = Duration::from_secs(300);

fn sleeper(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo started; exec sleep 3600"]
"#
    )
}

fn pod_dir(p: &Podvm, name: &str) -> PathBuf {
    p.state_dir().join("pods/default").join(name)
}

/// The pod record as its owner wrote it (read directly: no command runs).
fn record(p: &Podvm, name: &str) -> Option<serde_json::Value> {
    let data = std::fs::read(pod_dir(p, name).join("pod.json")).ok()?;
    serde_json::from_slice(&data).ok()
}

fn vm_pid(rec: &serde_json::Value) -> Option<i32> {
    rec["vm"]["processes"].as_array()?.last()?["pid"]
        .as_i64()
        .map(|p| p as i32)
}

fn owner_pid(p: &Podvm, name: &str) -> Option<i32> {
    let data = std::fs::read(pod_dir(p, name).join("owner.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    v["pid"].as_i64().map(|p| p as i32)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

fn kill9(pid: i32) {
    // SAFETY: kill(2) with a pid and a signal number has no memory-safety
    // preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Waits on progress for `what`, with the last-resort limit.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let limit = Instant::now() + GENEROUS;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// VM processes (qemu, podvm-vmm) of this podvm's pods still running.
fn vms(p: &Podvm) -> Vec<String> {
    processes_mentioning(&p.state_dir())
        .into_iter()
        .filter(|l| l.contains("qemu-system") || l.contains("podvm-vmm"))
        .collect()
}

fn get_json(p: &Podvm, name: &str) -> Option<serde_json::Value> {
    let out = p
        .cmd()
        .args(["get", "pod", name, "-o", "json"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn a_killed_vm_shows_the_pod_failed_with_a_reason_within_2s() {
    if !require_e2e("a_killed_vm") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    let manifest = p.write("pod.yaml", &sleeper("victim"));
    p.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    let vm = vm_pid(&record(&p, "victim").unwrap()).expect("the VM is recorded");
    let killed = Instant::now();
    kill9(vm);
    // No command runs meanwhile: the owner alone must notice.
    let rec = wait_for("the owner to record the VM's end", || {
        record(&p, "victim").filter(|r| r["lifecycle"]["state"] == "failed")
    });
    let noticed = killed.elapsed();
    podvm_testsupport::note(
        "a_killed_vm",
        &format!("recorded Failed {noticed:?} after SIGKILL"),
    );
    assert!(noticed < Duration::from_secs(2), "took {noticed:?}");
    assert_eq!(rec["lifecycle"]["reason"], "VmExited");
    let pod = get_json(&p, "victim").unwrap();
    assert_eq!(pod["status"]["phase"], "Failed", "{pod:#}");
    assert_eq!(pod["status"]["reason"], "VMExited", "{pod:#}");
    let message = pod["status"]["message"].as_str().unwrap();
    assert!(message.contains("was killed by SIGKILL"), "{message}");
    assert!(message.contains("guest console (last lines)"), "{message}");
    let table = p.ok(&["get", "pods"]);
    assert!(table.contains("ContainerStatusUnknown"), "{table}");
    p.ok(&["delete", "pod", "victim"]);
    assert!(!pod_dir(&p, "victim").exists());
    assert!(processes_mentioning(&p.state_dir()).is_empty());
}

/// Where in the boot `apply` is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// As soon as it runs.
    AtOnce,
    /// Once the pod's folder exists.
    Claimed,
    /// Once the record exists.
    Recorded,
    /// Once the owner runs.
    OwnerUp,
    /// Once the VM is recorded.
    VmStarted,
}

fn reached(p: &Podvm, name: &str, point: KillPoint) -> bool {
    match point {
        KillPoint::AtOnce => true,
        KillPoint::Claimed => pod_dir(p, name).exists(),
        KillPoint::Recorded => record(p, name).is_some(),
        KillPoint::OwnerUp => owner_pid(p, name).is_some(),
        KillPoint::VmStarted => record(p, name).and_then(|r| vm_pid(&r)).is_some(),
    }
}

#[test]
fn an_apply_killed_anywhere_in_the_boot_never_leaves_the_pod_pending() {
    if !require_e2e("killed_apply") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    for (i, point) in [
        KillPoint::AtOnce,
        KillPoint::Claimed,
        KillPoint::Recorded,
        KillPoint::OwnerUp,
        KillPoint::VmStarted,
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("interrupted-{i}");
        let manifest = p.write(&format!("{name}.yaml"), &sleeper(&name));
        let mut apply: Child = p.spawn(&["apply", "-f", manifest.to_str().unwrap()]);
        let limit = Instant::now() + GENEROUS;
        while !reached(&p, &name, point) && apply.try_wait().unwrap().is_none() {
            assert!(Instant::now() < limit, "{point:?} never reached");
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = apply.kill();
        let _ = apply.wait();
        // The next command finds the pod (or finds that it never existed).
        let end = wait_for(
            &format!("{point:?}: the pod to settle"),
            || match get_json(&p, &name) {
                None => Some("absent".to_string()),
                Some(pod) => match pod["status"]["phase"].as_str() {
                    Some("Running") => Some("Running".into()),
                    Some("Failed") if pod["status"]["reason"].is_string() => Some(format!(
                        "Failed: {}: {}",
                        pod["status"]["reason"], pod["status"]["message"]
                    )),
                    _ => None,
                },
            },
        );
        podvm_testsupport::note("killed_apply", &format!("killed at {point:?}: {end}"));
        if end == "absent" {
            assert!(
                matches!(point, KillPoint::AtOnce | KillPoint::Claimed),
                "{point:?}: a pod with a record must not vanish"
            );
            assert!(
                vms(&p).is_empty(),
                "{point:?}: a VM without a pod: {:?}",
                vms(&p)
            );
        } else {
            let log = std::fs::read_to_string(pod_dir(&p, &name).join("owner.log"));
            assert_eq!(
                end, "Running",
                "{point:?}: the boot itself cannot fail here; owner log: {log:?}"
            );
            p.ok(&["delete", "pod", &name]);
        }
    }
    assert!(vms(&p).is_empty(), "{:?}", vms(&p));
}

#[test]
fn a_killed_owner_is_replaced_without_a_second_vm_and_nothing_is_left_behind() {
    if !require_e2e("killed_owner") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    let manifest = p.write("pod.yaml", &sleeper("kept"));
    p.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    let vm = vm_pid(&record(&p, "kept").unwrap()).unwrap();
    let first = owner_pid(&p, "kept").unwrap();
    kill9(first);
    wait_for("the owner to die", || (!alive(first)).then_some(()));
    assert!(alive(vm), "the VM outlives its owner");

    // get: the pod is still running, and has a new owner.
    let table = p.ok(&["get", "pods"]);
    assert!(table.contains("Running"), "{table}");
    let second = wait_for("a new owner", || {
        owner_pid(&p, "kept").filter(|pid| *pid != first && alive(*pid))
    });
    assert_eq!(
        vm_pid(&record(&p, "kept").unwrap()),
        Some(vm),
        "the same VM"
    );
    assert_eq!(vms(&p).len(), 1, "no second VM: {:?}", vms(&p));

    // logs and exec reach the same VM; kill the new owner in between too.
    let logs = wait_for("the container's first line", || {
        Some(p.ok(&["logs", "kept"])).filter(|l| !l.is_empty())
    });
    assert_eq!(logs, "started\n");
    kill9(second);
    wait_for("the second owner to die", || (!alive(second)).then_some(()));
    let out = p.ok(&["exec", "kept", "--", "echo", "still here"]);
    assert_eq!(out, "still here\n");

    // The re-adopted owner still notices the VM's death.
    let third = wait_for("a third owner", || {
        owner_pid(&p, "kept").filter(|pid| *pid != second && alive(*pid))
    });
    assert!(alive(third));
    p.ok(&["delete", "pod", "kept"]);
    assert!(!pod_dir(&p, "kept").exists());
    assert!(
        processes_mentioning(&p.state_dir()).is_empty(),
        "left behind: {:?}",
        processes_mentioning(&p.state_dir())
    );
}

#[test]
fn apply_and_delete_at_the_same_moment_leave_a_consistent_state() {
    if !require_e2e("apply_delete_race") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    for round in 0..3 {
        let manifest = p.write("race.yaml", &sleeper("race"));
        let mut apply = p.spawn(&["apply", "-f", manifest.to_str().unwrap()]);
        let mut delete = p.spawn(&["delete", "pod", "race"]);
        let applied = apply.wait().unwrap().success();
        let deleted = delete.wait().unwrap().success();
        let exists = pod_dir(&p, "race").exists();
        podvm_testsupport::note(
            "apply_delete_race",
            &format!("round {round}: apply ok {applied}, delete ok {deleted}, pod exists {exists}"),
        );
        assert!(applied, "round {round}: apply itself cannot fail here");
        if exists {
            // delete ran first (NotFound), apply then created the pod.
            assert!(!deleted);
            let pod = get_json(&p, "race").unwrap();
            assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
            assert_eq!(vms(&p).len(), 1);
            p.ok(&["delete", "pod", "race"]);
        } else {
            // apply ran first, delete waited for it, then removed the pod.
            assert!(deleted);
        }
        assert!(vms(&p).is_empty(), "round {round}: {:?}", vms(&p));
        assert!(!pod_dir(&p, "race").exists());
    }
}

#[test]
fn get_pods_watch_prints_the_life_of_a_pod() {
    if !require_e2e("get_watch") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    let mut watch = p.spawn(&["get", "pods", "-w"]);
    let (tx, rx) = mpsc::channel();
    let out = watch.stdout.take().unwrap();
    // What the watch says on stderr, to explain an early end.
    let mut err = watch.stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    });
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let manifest = p.write(
        "brief.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: brief
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "sleep 2; exit 0"]
"#,
    );
    p.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    let mut lines: Vec<String> = Vec::new();
    let mut said = Some(said);
    let mut next = |want: &str, lines: &mut Vec<String>| loop {
        let Ok(line) = rx.recv_timeout(GENEROUS) else {
            let _ = watch.kill();
            let status = watch.wait();
            let stderr = said.take().map(|t| t.join().unwrap_or_default());
            panic!(
                "no line with {want:?} (watch ended: {status:?}, stderr: {stderr:?}); so far:\n{}",
                lines.join("\n")
            );
        };
        lines.push(line.clone());
        if line.starts_with("brief") && line.split_whitespace().nth(2) == Some(want) {
            return;
        }
    };
    next("Running", &mut lines);
    next("Completed", &mut lines);
    // The owner kept the pod's events, in the order they happened.
    let events = p.ok(&["get", "events"]);
    let at = |reason: &str| {
        events
            .lines()
            .position(|l| l.split_whitespace().nth(2) == Some(reason))
            .unwrap_or_else(|| panic!("no {reason} event:\n{events}"))
    };
    assert!(
        at("Pulled") < at("Created") && at("Created") < at("Started"),
        "{events}"
    );
    assert!(events.contains("Started container main"), "{events}");
    // kubectl shows a pod that already ended (Succeeded here) by its
    // phase while it is deleted, not as Terminating.
    p.ok(&["delete", "pod", "brief"]);
    let _ = watch.kill();
    let _ = watch.wait();
    eprintln!("{}", lines.join("\n"));
    assert!(
        lines[0].starts_with("NAME"),
        "the header comes first: {lines:?}"
    );
    let statuses: Vec<&str> = lines[1..]
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    // Each change once, in the pod's order (a status may repeat when
    // another column changed, e.g. READY).
    let mut order = vec!["ContainerCreating", "Running", "Completed"];
    order.retain(|s| statuses.contains(s));
    assert!(order.len() >= 2, "{statuses:?}");
    assert!(!statuses.contains(&"Terminating"), "{statuses:?}");
    let positions: Vec<usize> = order
        .iter()
        .map(|s| statuses.iter().position(|x| x == s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{statuses:?}");
}
