//! End to end: real images, a real microVM, the real agent over vsock, with
//! `--hypervisor auto`: the builtin VMM where this host's KVM can run a
//! Linux guest, else qemu (TCG) with vhost-device-vsock. Needs root, qemu,
//! vhost-device-vsock, the guest image and the test images (scripts/test.sh
//! provides them all).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use common::{processes_mentioning, require_e2e, status_of, Podvm};
use sha2::{Digest, Sha256};

const TWO_CONTAINERS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: pair
  labels: {app: talkers}
spec:
  restartPolicy: Never
  hostAliases:
  - ip: 10.9.8.7
    hostnames: [db.example]
  containers:
  - name: talker
    image: busybox
    command: ["sh", "-c", "echo hello from $(POD) on $(hostname) of $(APP) as $(SA); grep db.example /etc/hosts"]
    env:
    - name: POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: SA
      valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}
  - name: quiet
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "for i in 1 2 3; do echo tick $$i; sleep 0.5; done"]
"#;

const SLEEPER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: sleeper
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    securityContext: {runAsUser: 1000}
"#;

/// Every byte value, as a `printf` format of octal escapes (`\000`…`\377`).
fn all_bytes_format() -> String {
    (0..=255u8).map(|b| format!("\\{b:03o}")).collect()
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// SLEEPER plus a container that prints every byte value (then a newline)
/// and exits: its log must come back byte for byte.
fn sleeper_with_bytes() -> String {
    format!(
        "{SLEEPER}  - name: bytes\n    image: busybox\n    command: ['printf', '{}\\n']\n",
        all_bytes_format()
    )
}

/// Deterministic incompressible-looking bytes (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn container<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status_of(pod, "containerStatuses", name)
}

#[test]
fn two_container_pod_runs_logs_succeeds_and_is_deleted_cleanly() {
    if !require_e2e("two_container_pod") {
        return;
    }
    two_container_pod(&Podvm::with_image("busybox-oci.tar"));
}

/// The same pod on the builtin VMM where this host's KVM can run a Linux
/// guest; elsewhere `--hypervisor builtin` must refuse, saying why, and
/// start nothing.
#[test]
fn builtin_hypervisor_runs_the_pod_or_refuses_clearly() {
    if !require_e2e("builtin_hypervisor") {
        return;
    }
    let mut p = Podvm::with_image("busybox-oci.tar");
    p.hypervisor = "builtin";
    let check = p.ok(&["host-check"]);
    if check.contains("kvm can run a Linux guest: true") {
        assert!(
            check.contains("--hypervisor auto uses: builtin"),
            "auto picks the builtin VMM where KVM runs Linux: {check}"
        );
        two_container_pod(&p);
        return;
    }
    assert!(
        check.contains("--hypervisor auto uses: qemu with -accel tcg"),
        "{check}"
    );
    let manifest = p.write("pair.yaml", TWO_CONTAINERS);
    let out = p.run(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs a KVM that can run a Linux guest"),
        "{err}"
    );
    assert!(processes_mentioning(&p.state_dir()).is_empty());
    assert!(p.ok(&["get", "pods", "-o", "name"]).is_empty());
    podvm_testsupport::note(
        "builtin_hypervisor",
        "this host's KVM cannot run a Linux guest: checked that --hypervisor builtin refuses; the pod itself did not run on the builtin VMM",
    );
}

fn two_container_pod(p: &Podvm) {
    let manifest = p.write("pair.yaml", TWO_CONTAINERS);
    let out = p.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(out.contains("pod/pair created"), "{out}");

    // `logs -f` follows the running container and ends when it exits.
    let followed = p.ok(&["logs", "-f", "pair", "-c", "quiet"]);
    assert_eq!(followed, "tick 1\ntick 2\ntick 3\n");

    let pod = p.wait_pod("pair", Duration::from_secs(60), |v| {
        v["status"]["phase"] == "Succeeded"
    });
    for c in ["talker", "quiet"] {
        let st = container(&pod, c);
        assert_eq!(st["state"]["terminated"]["exitCode"], 0, "{st:#}");
        assert_eq!(st["state"]["terminated"]["reason"], "Completed", "{st:#}");
        assert_eq!(st["ready"], false);
        assert_eq!(st["restartCount"], 0);
    }
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "PodCompleted");

    let logs = p.ok(&["logs", "pair", "-c", "talker"]);
    assert!(
        logs.contains("hello from pair on pair of talkers as default"),
        "{logs}"
    );
    assert!(logs.contains("10.9.8.7\tdb.example"), "{logs}");
    let table = p.ok(&["get", "pods"]);
    assert!(
        table.contains("pair") && table.contains("Completed"),
        "{table}"
    );

    // Which processes and sockets belong to this pod's VM.
    let state = p.state_dir();
    assert!(
        !processes_mentioning(&state).is_empty(),
        "no VM processes found"
    );
    p.ok(&["delete", "pod", "pair"]);
    std::thread::sleep(Duration::from_millis(200));
    let left = processes_mentioning(&state);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let files: Vec<_> = walk(&state);
    assert!(files.is_empty(), "files left behind: {files:?}");
    let out = p.run(&["get", "pod", "pair"]);
    assert!(!out.status.success());
}

#[test]
fn exec_user_and_exit_codes_in_a_running_pod() {
    if !require_e2e("exec_in_running_pod") {
        return;
    }
    let p = Podvm::with_image("busybox-docker.tar");
    let manifest = p.write("sleeper.yaml", &sleeper_with_bytes());
    p.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    let pod = p.wait_pod("sleeper", Duration::from_secs(60), |v| {
        v["status"]["phase"] == "Running"
    });
    assert_eq!(container(&pod, "main")["ready"], true);

    // Without -c, exec picks the first container (kubectl's default).
    let id = p.ok(&["exec", "sleeper", "--", "id", "-u"]);
    assert_eq!(id.trim(), "1000");
    let host = p.ok(&["exec", "sleeper", "--", "hostname"]);
    assert_eq!(host.trim(), "sleeper");
    let pid1 = p.ok(&["exec", "sleeper", "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(pid1.replace('\0', " ").trim(), "sleep 3600");
    let out = p.run(&[
        "exec",
        "sleeper",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "oops");

    // Binary output survives exec and logs byte for byte.
    let format = all_bytes_format();
    let out = p.run(&["exec", "sleeper", "-c", "main", "--", "printf", &format]);
    assert!(out.status.success());
    assert_eq!(out.stdout, all_bytes(), "exec output differs");
    let out = p.run(&["logs", "-f", "sleeper", "-c", "bytes"]);
    assert!(out.status.success());
    let mut want = all_bytes();
    want.push(b'\n');
    assert_eq!(out.stdout, want, "log output differs");

    // -i passes stdin through whole, with no size limit: 8 MiB.
    let input = noise(8 * 1024 * 1024);
    let out = p.run_with_input(
        &["exec", "-i", "sleeper", "-c", "main", "--", "sha256sum"],
        input.clone(),
    );
    assert!(out.status.success());
    let digest = hex::encode(Sha256::digest(&input));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next(),
        Some(digest.as_str())
    );

    // -i streams: the command answers the first line while our stdin is
    // still open, then reads the rest to its end.
    let mut child = p.spawn(&[
        "exec",
        "-i",
        "sleeper",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "read line; echo \"got $line\"; cat",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"hello\n").unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut first = String::new();
        let n = stdout.read_line(&mut first).unwrap();
        tx.send(first).unwrap();
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        (n, rest)
    });
    let first = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("no answer to the first line while stdin was open");
    assert_eq!(first, "got hello\n");
    stdin.write_all(b"and the rest").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let (_, rest) = reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(rest, b"and the rest");

    let t = std::time::Instant::now();
    p.ok(&["delete", "pod", "sleeper"]);
    // sleep as PID 1 ignores SIGTERM, so the 2 s grace period runs out.
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "delete took {:?}",
        t.elapsed()
    );
    assert!(processes_mentioning(&p.state_dir()).is_empty());
}

#[test]
fn invalid_manifest_is_rejected_and_nothing_starts() {
    if !require_e2e("invalid_manifest") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    let bad = p.write(
        "bad.yaml",
        &SLEEPER.replace(
            "    image: busybox\n",
            "    image: busybox\n    livenessProbe: {exec: {command: [true]}}\n",
        ),
    );
    let out = p.run(&["apply", "-f", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.containers[0].livenessProbe"), "{err}");

    let missing = p.write(
        "missing.yaml",
        &SLEEPER.replace("image: busybox", "image: nosuch:1.0"),
    );
    let out = p.run(&["apply", "-f", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.containers[0].image"));

    assert!(
        walk(&p.state_dir()).is_empty(),
        "state was written for a rejected pod"
    );
    assert!(processes_mentioning(&p.state_dir()).is_empty());
    assert!(p.ok(&["get", "pods", "-o", "name"]).is_empty());
}

/// Every file (not folder) under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
