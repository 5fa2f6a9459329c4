//! How pods end, end to end in a real microVM: `delete --grace-period 0
//! --force` is immediate (no preStop), `activeDeadlineSeconds` fails the
//! pod with `DeadlineExceeded`, a disk emptyDir past its `sizeLimit`
//! gets the pod evicted, termination messages come from
//! `terminationMessagePath` or the log's tail; and readiness gates hold
//! `Ready` until `podvm patch --subresource=status` sets them. Needs what
//! tests/e2e_pods.rs needs (scripts/test.sh provides it).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{condition, require_e2e, status_of, Podvm};

/// Last resort for anything a test waits on; the pod's progress is what
/// ends waits.
const GENEROUS: Duration = Duration::from_secs(300);

const STUBBORN: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  terminationGracePeriodSeconds: 120
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    lifecycle:
      preStop:
        exec: {command: [sleep, "100"]}
"#;

const DEADLINE: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: deadline
spec:
  activeDeadlineSeconds: 3
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
"#;

const GREEDY: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: greedy
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: scratch
    emptyDir: {sizeLimit: 1Mi}
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "dd if=/dev/zero of=/scratch/big bs=1024 count=4096 && sync && exec sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
"#;

const MESSAGES: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: messages
spec:
  restartPolicy: Never
  containers:
  - name: file
    image: busybox
    command: [sh, -c, "echo goodbye from the file > /dev/termination-log; exit 2"]
  - name: custom
    image: busybox
    terminationMessagePath: /tmp/last-words
    command: [sh, -c, "echo custom path > /tmp/last-words"]
  - name: fallback
    image: busybox
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, "echo first line; echo last words; exit 1"]
"#;

const GATED: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: gated
spec:
  terminationGracePeriodSeconds: 1
  readinessGates:
  - conditionType: example.com/load-balancer
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
"#;

#[test]
fn a_forced_delete_is_immediate_and_skips_pre_stop() {
    if !require_e2e("forced_delete") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("stubborn", STUBBORN);
    p.wait_pod("stubborn", GENEROUS, |v| {
        status_of(v, "containerStatuses", "app")["state"]["running"].is_object()
    });
    let start = Instant::now();
    let out = p.run(&[
        "delete",
        "pod",
        "stubborn",
        "--grace-period",
        "0",
        "--force",
    ]);
    let took = start.elapsed();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Immediate deletion does not wait"),
        "{stderr}"
    );
    // A graceful delete would have waited for preStop's 100 s.
    assert!(took < Duration::from_secs(100), "{took:?}");
    let gone = p.run(&["get", "pod", "stubborn"]);
    assert!(!gone.status.success());
}

#[test]
fn the_active_deadline_fails_the_pod() {
    if !require_e2e("active_deadline") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("deadline", DEADLINE);
    let failed = p.wait_pod("deadline", GENEROUS, |v| v["status"]["phase"] == "Failed");
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    assert_eq!(p.columns("deadline").1, "DeadlineExceeded");
    let events = p.ok(&["get", "events"]);
    assert!(events.contains("DeadlineExceeded"), "{events}");
    p.ok(&["delete", "pod", "deadline"]);
}

#[test]
fn a_disk_empty_dir_past_its_size_limit_evicts_the_pod() {
    if !require_e2e("eviction") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("greedy", GREEDY);
    let evicted = p.wait_pod("greedy", GENEROUS, |v| {
        v["status"]["phase"] == "Failed"
            && status_of(v, "containerStatuses", "app")["state"]["terminated"].is_object()
    });
    assert_eq!(evicted["status"]["reason"], "Evicted");
    let message = evicted["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\"."),
        "{message}"
    );
    // Once the container was killed, kubectl shows its reason, as for
    // evictions on a node.
    assert_eq!(p.columns("greedy").1, "Error");
    p.ok(&["delete", "pod", "greedy"]);
}

#[test]
fn termination_messages_come_from_the_file_or_the_log() {
    if !require_e2e("termination_messages") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("messages", MESSAGES);
    let done = p.wait_pod("messages", GENEROUS, |v| v["status"]["phase"] == "Failed");
    let message = |name: &str| {
        status_of(&done, "containerStatuses", name)["state"]["terminated"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(message("file"), "goodbye from the file\n");
    assert_eq!(message("custom"), "custom path\n");
    assert_eq!(message("fallback"), "first line\nlast words\n");
    p.ok(&["delete", "pod", "messages"]);
}

#[test]
fn readiness_gates_hold_ready_until_patched() {
    if !require_e2e("readiness_gates") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("gated", GATED);
    let waiting = p.wait_pod("gated", GENEROUS, |v| {
        condition(v, "ContainersReady")["status"] == "True"
    });
    let ready = condition(&waiting, "Ready");
    assert_eq!(ready["status"], "False", "{waiting:#}");
    assert_eq!(ready["reason"], "ReadinessGatesNotReady");
    let patch =
        r#"{"status":{"conditions":[{"type":"example.com/load-balancer","status":"True"}]}}"#;
    let out = p.ok(&[
        "patch",
        "pod",
        "gated",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
    assert!(out.contains("pod/gated patched"), "{out}");
    let open = p.wait_pod("gated", GENEROUS, |v| {
        condition(v, "Ready")["status"] == "True"
    });
    assert_eq!(
        condition(&open, "example.com/load-balancer")["status"],
        "True"
    );
    let wide = p.ok(&["get", "pods", "gated", "-o", "wide"]);
    assert!(
        wide.lines().nth(1).unwrap_or_default().contains("1/1"),
        "{wide}"
    );
    // A kubelet-owned condition cannot be patched: exit 1, nothing changed.
    let refused = p.run(&[
        "patch",
        "pod",
        "gated",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ]);
    assert_eq!(refused.status.code(), Some(1));
    p.ok(&["delete", "pod", "gated"]);
}
