//! The pod lifecycle end to end, in a real microVM, with the seeds'
//! scenarios adapted to busybox: an init container writes `index.html`
//! into an emptyDir, busybox `httpd` serves it behind an httpGet readiness
//! probe and a tcpSocket liveness probe, postStart writes a file that
//! `exec` reads, preStop runs on delete within the grace period; a
//! container whose liveness probe starts failing is restarted; a crash
//! loop shows `CrashLoopBackOff` with growing delays; a failing init
//! container under `Never` fails the pod; a sidecar keeps running while
//! the app completes. Needs what tests/e2e_pods.rs needs (scripts/test.sh
//! provides it).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{condition, require_e2e, status_of, Podvm};

/// Last resort for anything a test waits on; the pod's progress is what
/// ends waits.
const GENEROUS: Duration = Duration::from_secs(300);

const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 30
  volumes:
  - name: www
    emptyDir: {}
  - name: scratch
    emptyDir: {medium: Memory, sizeLimit: 8Mi}
  initContainers:
  - name: content
    image: busybox
    command: [sh, -c, "echo '<h1>hello from the init container</h1>' > /www/index.html"]
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: httpd
    image: busybox
    command: [sh, -c, "httpd -f -p 8080 -h /www & trap 'echo got TERM; kill $!; exit 0' TERM; echo serving; wait"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 2
    lifecycle:
      postStart:
        exec: {command: [sh, -c, "echo started-by-postStart > /scratch/marker"]}
      preStop:
        exec: {command: [sh, -c, "echo preStop-ran > /proc/1/fd/1; sleep 2"]}
    volumeMounts:
    - {name: www, mountPath: /www, readOnly: true}
    - {name: scratch, mountPath: /scratch}
"#;

const LIVENESS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: liveness
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 1
"#;

const CRASH: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "echo crashing; exit 1"]
"#;

const INIT_FAILS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: init-fails
spec:
  restartPolicy: Never
  initContainers:
  - name: setup
    image: busybox
    command: [sh, -c, "echo cannot set up; exit 3"]
  containers:
  - name: app
    image: busybox
    command: [echo, never runs]
"#;

const SIDECAR: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: sidecar
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  initContainers:
  - name: logger
    image: busybox
    restartPolicy: Always
    command: [sh, -c, "trap 'exit 0' TERM; echo logging; while true; do sleep 1; done"]
  containers:
  - name: job
    image: busybox
    command: [sh, -c, "sleep 2; echo job done"]
"#;

fn exec(p: &Podvm, pod: &str, container: &str, argv: &[&str]) -> (String, i32) {
    let mut args = vec!["exec", pod, "-c", container, "--"];
    args.extend_from_slice(argv);
    let out = p.run(&args);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn the_seed_web_pod_runs_the_kubelet_way() {
    if !require_e2e("seed_web_pod") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("web", WEB);
    let ready = p.wait_pod("web", GENEROUS, |v| {
        condition(v, "Ready")["status"] == "True"
    });
    assert_eq!(condition(&ready, "Initialized")["status"], "True");
    assert_eq!(condition(&ready, "ContainersReady")["status"], "True");
    let content = status_of(&ready, "initContainerStatuses", "content");
    assert_eq!(content["state"]["terminated"]["reason"], "Completed");
    assert_eq!(p.columns("web"), ("1/1".into(), "Running".into()));

    // postStart ran before the container was Running.
    let (marker, code) = exec(&p, "web", "httpd", &["cat", "/scratch/marker"]);
    assert_eq!((marker.as_str(), code), ("started-by-postStart\n", 0));
    // The init container's page, served by httpd in the pod.
    let (page, _) = exec(
        &p,
        "web",
        "httpd",
        &["wget", "-qO-", "http://127.0.0.1:8080/index.html"],
    );
    assert!(page.contains("hello from the init container"), "{page}");
    // The disk emptyDir is ext4 on a virtio disk, read-only here; the
    // memory one is a tmpfs of its size limit.
    let (mounts, _) = exec(&p, "web", "httpd", &["cat", "/proc/mounts"]);
    let www = mounts.lines().find(|l| l.contains(" /www ")).unwrap();
    assert!(www.contains(" ext4 ") && www.contains("ro,"), "{www}");
    let scratch = mounts.lines().find(|l| l.contains(" /scratch ")).unwrap();
    assert!(
        scratch.contains(" tmpfs ") && scratch.contains("size=8192k"),
        "{scratch}"
    );
    let (_, code) = exec(&p, "web", "httpd", &["touch", "/www/other.html"]);
    assert_ne!(code, 0, "a read-only mount took a write");

    let described = p.ok(&["describe", "pod", "web"]);
    for line in [
        "Readiness:",
        "http-get http://:http/index.html",
        "tcp-socket :8080",
        "Init Containers:",
        "EmptyDir",
    ] {
        assert!(described.contains(line), "{line:?} not in:\n{described}");
    }

    // Delete while following the log: preStop's line comes before the
    // stop signal's, and the delete waited for preStop's sleep.
    let mut follower = p.spawn(&["logs", "web", "-c", "httpd", "-f"]);
    let mut out = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    p.ok(&["delete", "pod", "web"]);
    let took = start.elapsed();
    let _ = follower.kill();
    let _ = follower.wait();
    let log = reader.join().unwrap();
    assert!(
        took >= Duration::from_secs(2),
        "preStop's sleep was cut: {took:?}"
    );
    let pre_stop = log
        .find("preStop-ran")
        .unwrap_or_else(|| panic!("no preStop line: {log}"));
    let term = log
        .find("got TERM")
        .unwrap_or_else(|| panic!("no TERM line: {log}"));
    assert!(pre_stop < term, "{log}");
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    if !require_e2e("liveness_restart") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("liveness", LIVENESS);
    let restarted = p.wait_pod("liveness", GENEROUS, |v| {
        status_of(v, "containerStatuses", "app")["restartCount"]
            .as_i64()
            .is_some_and(|n| n >= 1)
    });
    let app = status_of(&restarted, "containerStatuses", "app");
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 137);
    let events = p.ok(&["get", "events"]);
    assert!(events.contains("Liveness probe failed"), "{events}");
    assert!(
        events.contains("Container app failed liveness probe, will be restarted"),
        "{events}"
    );
    p.ok(&["delete", "pod", "liveness"]);
}

#[test]
fn a_crash_loop_backs_off_longer_each_time() {
    if !require_e2e("crash_loop") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("crash", CRASH);
    let waiting_message = |v: &serde_json::Value| {
        status_of(v, "containerStatuses", "app")["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    p.wait_pod("crash", GENEROUS, |v| {
        waiting_message(v).starts_with("back-off 10s restarting failed container=app")
    });
    let (_, status) = p.columns("crash");
    assert_eq!(status, "CrashLoopBackOff");
    let later = p.wait_pod("crash", GENEROUS, |v| {
        waiting_message(v).starts_with("back-off 20s")
    });
    let app = status_of(&later, "containerStatuses", "app");
    assert!(app["restartCount"].as_i64().unwrap() >= 2, "{app:#}");
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 1);
    let described = p.ok(&["describe", "pod", "crash"]);
    assert!(
        described.contains("Back-off restarting failed container app"),
        "{described}"
    );
    p.ok(&["delete", "pod", "crash"]);
}

#[test]
fn a_failing_init_container_under_never_fails_the_pod() {
    if !require_e2e("init_fails") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("init-fails", INIT_FAILS);
    let failed = p.wait_pod("init-fails", GENEROUS, |v| v["status"]["phase"] == "Failed");
    let setup = status_of(&failed, "initContainerStatuses", "setup");
    assert_eq!(setup["state"]["terminated"]["exitCode"], 3);
    let app = status_of(&failed, "containerStatuses", "app");
    assert_eq!(app["state"]["waiting"]["reason"], "PodInitializing");
    assert_eq!(p.columns("init-fails"), ("0/1".into(), "Init:Error".into()));
    p.ok(&["delete", "pod", "init-fails"]);
}

#[test]
fn a_sidecar_keeps_running_while_the_app_completes() {
    if !require_e2e("sidecar") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    p.apply_manifest("sidecar", SIDECAR);
    // While the job runs, so does the sidecar, counted in READY.
    let both = p.wait_pod("sidecar", GENEROUS, |v| {
        status_of(v, "containerStatuses", "job")["state"]["running"].is_object()
            || v["status"]["phase"] == "Succeeded"
    });
    if both["status"]["phase"] == "Running" {
        let logger = status_of(&both, "initContainerStatuses", "logger");
        assert!(logger["state"]["running"].is_object(), "{logger:#}");
    }
    let done = p.wait_pod("sidecar", GENEROUS, |v| v["status"]["phase"] == "Succeeded");
    let job = status_of(&done, "containerStatuses", "job");
    assert_eq!(job["state"]["terminated"]["reason"], "Completed");
    let logger = status_of(&done, "initContainerStatuses", "logger");
    assert_eq!(logger["state"]["terminated"]["exitCode"], 0);
    assert_eq!(logger["restartCount"], 0);
    assert_eq!(p.columns("sidecar").1, "Completed");
    let logs = p.ok(&["logs", "sidecar", "-c", "job"]);
    assert_eq!(logs, "job done\n");
    // An init container's log is read by its name, as with kubectl.
    let sidecar_logs = p.ok(&["logs", "sidecar", "-c", "logger"]);
    assert_eq!(sidecar_logs, "logging\n");
    p.ok(&["delete", "pod", "sidecar"]);
}

/// tests/images/build-grpc.sh's health server: `podvm.Web` SERVING,
/// `podvm.Sick` NOT_SERVING, and the server itself (`""`) SERVING until
/// 15 s after its start, far past its first readiness probe.
const GRPC: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: grpc
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: grpc
    image: podvm/grpc-health
    args: [--port, "9090", --serving, podvm.Web, --not-serving, podvm.Sick, --not-serving-after, "15"]
    ports: [{name: grpc, containerPort: 9090}]
    readinessProbe:
      grpc: {port: 9090, service: podvm.Web}
      periodSeconds: 1
    livenessProbe:
      grpc: {port: 9090}
      periodSeconds: 1
      failureThreshold: 1
"#;

#[test]
fn a_grpc_probe_asks_a_health_server_in_the_vm() {
    if !require_e2e("grpc_probe") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    let archive = common::test_images().join("grpc-health-oci.tar");
    let loaded = p.ok(&["image", "load", "-i", archive.to_str().unwrap()]);
    assert!(
        loaded.contains("Loaded image: docker.io/podvm/grpc-health:latest"),
        "{loaded}"
    );
    p.apply_manifest("grpc", GRPC);
    let restart_count = |v: &serde_json::Value| {
        status_of(v, "containerStatuses", "grpc")["restartCount"]
            .as_i64()
            .unwrap_or(-1)
    };

    // Readiness asks for podvm.Web; the server answers SERVING.
    let ready = p.wait_pod("grpc", GENEROUS, |v| {
        condition(v, "Ready")["status"] == "True"
    });
    assert_eq!(
        restart_count(&ready),
        0,
        "restarted before ready: {ready:#}"
    );
    // kubectl's form, `grpc <pod>:PORT SERVICE ATTRS` (an empty service
    // leaves two spaces).
    let described = p.ok(&["describe", "pod", "grpc"]);
    let probe_line = |key: &str| {
        described
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {key} in:\n{described}"))
            .to_string()
    };
    assert_eq!(
        probe_line("Readiness:"),
        "grpc <pod>:9090 podvm.Web delay=0s timeout=1s period=1s #success=1 #failure=3"
    );
    assert_eq!(
        probe_line("Liveness:"),
        "grpc <pod>:9090  delay=0s timeout=1s period=1s #success=1 #failure=1"
    );

    // The server turns NOT_SERVING; liveness fails and the kubelet way
    // restarts the container (SIGTERM, which the server exits 0 on).
    let restarted = p.wait_pod("grpc", GENEROUS, |v| restart_count(v) >= 1);
    let grpc = status_of(&restarted, "containerStatuses", "grpc");
    assert_eq!(grpc["lastState"]["terminated"]["exitCode"], 0, "{grpc:#}");
    let events = p.ok(&["get", "events"]);
    assert!(
        events
            .contains(r#"Liveness probe failed: service unhealthy (responded with "NOT_SERVING")"#),
        "{events}"
    );
    assert!(
        events.contains("Container grpc failed liveness probe, will be restarted"),
        "{events}"
    );

    // The new server is SERVING again, and ready.
    p.wait_pod("grpc", GENEROUS, |v| {
        restart_count(v) >= 1 && condition(v, "Ready")["status"] == "True"
    });
    let logs = p.ok(&["logs", "grpc", "-c", "grpc"]);
    assert!(logs.starts_with("listening on :9090\n"), "{logs}");
    p.ok(&["delete", "pod", "grpc"]);
}
