//! The pod lifecycle the kubelet way, through a real agent in host mode
//! (real namespaces, real busybox containers): init containers in order,
//! sidecars, probes of every kind (exec, httpGet against busybox httpd,
//! tcpSocket, grpc against a health server the test runs in the pod's
//! network namespace), postStart and preStop hooks, the image's stop
//! signal, activeDeadlineSeconds and eviction, with the pod's phase,
//! conditions and kubelet's events. Periods are one second, so each test
//! takes seconds.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use common::{container, health_server_in, pod, processes_with, terminated, TestAgent};
use podvm_proto::{
    ContainerSpec, ContainerState, EmptyDirMedium, Event, HookAction, HttpGet, HttpScheme,
    PodConditionType, PodPhase, Probe, ProbeAction, RestartPolicy, SandboxStatus, Volume,
    VolumeMount,
};

/// Last-resort limit for a state the pod reaches by itself.
const LONG: Duration = Duration::from_secs(120);

fn probe(action: ProbeAction) -> Probe {
    Probe {
        period_seconds: 1,
        ..Probe::with_defaults(action)
    }
}

fn exec(command: &[&str]) -> ProbeAction {
    ProbeAction::Exec {
        command: command.iter().map(|s| s.to_string()).collect(),
    }
}

fn hook(command: &str) -> HookAction {
    HookAction::Exec {
        command: vec!["sh".into(), "-c".into(), command.into()],
    }
}

fn shared_dir() -> Volume {
    Volume {
        name: "shared".into(),
        medium: EmptyDirMedium::Directory,
        size_limit: None,
    }
}

fn at(path: &str) -> VolumeMount {
    VolumeMount {
        name: "shared".into(),
        mount_path: path.into(),
        read_only: false,
        sub_path: None,
    }
}

/// A container that says `up`, then waits for SIGTERM, on which it runs
/// `on_term` and exits 0.
fn polite(agent: &TestAgent, name: &str, on_term: &str) -> ContainerSpec {
    let script = format!("trap '{on_term}; exit 0' TERM; echo up; while true; do sleep 0.1; done");
    container(name, &agent.rootfs, &["sh", "-c", &script])
}

fn with_volume(mut c: ContainerSpec) -> ContainerSpec {
    c.volume_mounts = vec![at("/shared")];
    c
}

/// Polls the sandbox status until `pred` holds.
fn wait_status(
    agent: &TestAgent,
    what: &str,
    pred: impl Fn(&SandboxStatus) -> bool,
) -> SandboxStatus {
    let deadline = Instant::now() + LONG;
    loop {
        let status = agent.status();
        if pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn condition(status: &SandboxStatus, kind: PodConditionType) -> bool {
    status
        .conditions
        .iter()
        .find(|c| c.condition_type == kind)
        .unwrap_or_else(|| panic!("no {kind:?} condition: {status:#?}"))
        .status
}

fn events(agent: &TestAgent) -> Vec<Event> {
    agent.conn().events(0, 0).unwrap().events
}

/// (container, reason, message) of every event.
fn event_lines(agent: &TestAgent) -> Vec<(String, String, String)> {
    events(agent)
        .into_iter()
        .map(|e| (e.container.unwrap_or_default(), e.reason, e.message))
        .collect()
}

fn has_event(agent: &TestAgent, container: &str, reason: &str, message_part: &str) -> bool {
    event_lines(agent)
        .iter()
        .any(|(c, r, m)| c == container && r == reason && m.contains(message_part))
}

fn wait_event(agent: &TestAgent, container: &str, reason: &str, message_part: &str) {
    let deadline = Instant::now() + LONG;
    while !has_event(agent, container, reason, message_part) {
        assert!(
            Instant::now() < deadline,
            "no {reason} event about {container} with {message_part:?}: {:#?}",
            event_lines(agent)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn init_containers_run_in_order_then_the_app() {
    require_env!();
    let agent = TestAgent::start();
    let mut spec = pod(vec![with_volume(container(
        "app",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "cat /shared/order; echo app-started; exec sleep 1000",
        ],
    ))]);
    spec.restart_policy = RestartPolicy::Always;
    spec.volumes = vec![shared_dir()];
    spec.init_containers = vec![
        with_volume(container(
            "first",
            &agent.rootfs,
            &["sh", "-c", "sleep 0.5; echo first >> /shared/order"],
        )),
        // Fails once, then succeeds: retried under Always.
        with_volume(container(
            "second",
            &agent.rootfs,
            &[
                "sh",
                "-c",
                "if [ ! -f /shared/tried ]; then touch /shared/tried; exit 1; fi; echo second >> /shared/order",
            ],
        )),
    ];
    agent.create(spec);
    // While the init containers run, the app waits.
    let early = agent.status();
    if early.phase == PodPhase::Pending && !condition(&early, PodConditionType::Initialized) {
        assert!(matches!(
            &agent.container_status("app").state,
            ContainerState::Waiting { reason, .. } if reason == "PodInitializing"
        ));
    }
    let log = agent.wait_log("app", "app-started");
    assert_eq!(log, "first\nsecond\napp-started\n");
    let status = wait_status(&agent, "Running", |s| s.phase == PodPhase::Running);
    assert!(condition(&status, PodConditionType::Initialized));
    assert_eq!(status.init_containers.len(), 2);
    let second = agent.container_status("second");
    assert_eq!(second.restart_count, 1);
    assert_eq!(terminated(&second).0, 0);
    assert_eq!(terminated(&agent.container_status("first")).1, "Completed");
}

#[test]
fn a_failing_init_container_under_never_fails_the_pod() {
    require_env!();
    let agent = TestAgent::start();
    let mut spec = pod(vec![container(
        "app",
        &agent.rootfs,
        &["echo", "never runs"],
    )]);
    spec.init_containers = vec![container(
        "setup",
        &agent.rootfs,
        &["sh", "-c", "echo cannot set up; exit 3"],
    )];
    agent.create(spec);
    let status = wait_status(&agent, "Failed", |s| s.phase == PodPhase::Failed);
    assert!(!condition(&status, PodConditionType::Initialized));
    assert_eq!(terminated(&agent.container_status("setup")).0, 3);
    assert!(matches!(
        &agent.container_status("app").state,
        ContainerState::Waiting { reason, .. } if reason == "PodInitializing"
    ));
}

#[test]
fn a_sidecar_runs_beside_the_app_and_is_stopped_after_it_completes() {
    require_env!();
    let agent = TestAgent::start();
    let mut sidecar = with_volume(polite(
        &agent,
        "logger",
        "echo sidecar-term >> /shared/trail",
    ));
    sidecar.restart_policy = Some(RestartPolicy::Always);
    sidecar.startup_probe = Some(probe(exec(&["true"])));
    let mut spec = pod(vec![with_volume(container(
        "job",
        &agent.rootfs,
        &["sh", "-c", "sleep 1; echo job-done >> /shared/trail"],
    ))]);
    spec.init_containers = vec![sidecar];
    spec.volumes = vec![shared_dir()];
    agent.create(spec);
    let status = wait_status(&agent, "Succeeded", |s| s.phase == PodPhase::Succeeded);
    let trail =
        std::fs::read_to_string(agent.run_dir.join("sandbox/volumes/shared/trail")).unwrap();
    assert_eq!(trail, "job-done\nsidecar-term\n");
    assert_eq!(
        terminated(&agent.container_status("job")),
        (0, "Completed".into(), None)
    );
    assert_eq!(terminated(&agent.container_status("logger")).0, 0);
    assert_eq!(status.init_containers[0].restart_count, 0);
}

#[test]
fn readiness_follows_an_http_probe_against_busybox_httpd() {
    require_env!();
    let agent = TestAgent::start();
    let mut web = container(
        "web",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "mkdir -p /www; echo ok > /www/healthz; exec httpd -f -p 18080 -h /www",
        ],
    );
    web.readiness_probe = Some(probe(ProbeAction::HttpGet(HttpGet {
        host: None,
        port: 18080,
        path: "/healthz".into(),
        scheme: HttpScheme::Http,
        headers: vec![("X-Probe".into(), "podvm".into())],
    })));
    let mut spec = pod(vec![web]);
    spec.restart_policy = RestartPolicy::Always;
    agent.create(spec);
    let ready = wait_status(&agent, "Ready", |s| {
        s.containers[0].ready && condition(s, PodConditionType::ContainersReady)
    });
    assert!(ready.containers[0].started);
    // The page goes: httpd answers 404, the probe fails, the pod is not
    // ready, and kubelet's Unhealthy event says why.
    let (_, _, code) = agent.exec("web", &["rm", "/www/healthz"], b"");
    assert_eq!(code, 0);
    let unready = wait_status(&agent, "not ready", |s| !s.containers[0].ready);
    assert!(!condition(&unready, PodConditionType::ContainersReady));
    wait_event(
        &agent,
        "web",
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 404",
    );
    // Not ready is not restarted.
    assert_eq!(agent.container_status("web").restart_count, 0);
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = container(
        "app",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 1000",
        ],
    );
    app.liveness_probe = Some(Probe {
        failure_threshold: 1,
        ..probe(exec(&["cat", "/tmp/healthy"]))
    });
    let mut spec = pod(vec![app]);
    spec.restart_policy = RestartPolicy::Always;
    agent.create(spec);
    agent.wait_for("app", "a restart", |s| s.restart_count >= 1);
    assert!(has_event(
        &agent,
        "app",
        "Unhealthy",
        "Liveness probe failed: cat: can't open '/tmp/healthy'"
    ));
    assert!(has_event(
        &agent,
        "app",
        "Killing",
        "Container app failed liveness probe, will be restarted"
    ));
    let status = agent.container_status("app");
    assert!(matches!(
        status.last_state,
        Some(ContainerState::Terminated { exit_code: 137, .. })
    ));
}

#[test]
fn a_tcp_startup_probe_gates_started_and_fails_on_a_closed_port() {
    require_env!();
    let agent = TestAgent::start();
    let mut open = container(
        "open",
        &agent.rootfs,
        &["sh", "-c", "sleep 1; exec httpd -f -p 18081"],
    );
    open.startup_probe = Some(probe(ProbeAction::TcpSocket {
        host: None,
        port: 18081,
    }));
    let mut closed = container("closed", &agent.rootfs, &["sleep", "1000"]);
    closed.startup_probe = Some(Probe {
        failure_threshold: 2,
        ..probe(ProbeAction::TcpSocket {
            host: None,
            port: 18082,
        })
    });
    let mut spec = pod(vec![open, closed]);
    spec.restart_policy = RestartPolicy::Always;
    agent.create(spec);
    let started = agent.wait_for("open", "started", |s| s.started && s.ready);
    assert!(matches!(started.state, ContainerState::Running { .. }));
    agent.wait_for("closed", "a restart", |s| s.restart_count >= 1);
    assert!(has_event(
        &agent,
        "closed",
        "Unhealthy",
        "Startup probe failed: dial tcp 127.0.0.1:18082: connect: connection refused"
    ));
    assert!(has_event(
        &agent,
        "closed",
        "Killing",
        "Container closed failed startup probe, will be restarted"
    ));
}

#[test]
fn a_grpc_probe_asks_a_health_server_in_the_pods_network() {
    require_env!();
    let marker = format!("PODVM_GRPC_TEST={}", std::process::id());
    let agent = TestAgent::start();
    let mut holder = container("holder", &agent.rootfs, &["sleep", "1000"]);
    holder.env = vec![podvm_proto::EnvVar {
        name: "PODVM_GRPC_TEST".into(),
        value: std::process::id().to_string(),
    }];
    let mut checked = container("checked", &agent.rootfs, &["sleep", "1000"]);
    checked.readiness_probe = Some(probe(ProbeAction::Grpc {
        port: 18083,
        service: Some("podvm.Test".into()),
    }));
    let mut unknown = container("unknown", &agent.rootfs, &["sleep", "1000"]);
    unknown.readiness_probe = Some(probe(ProbeAction::Grpc {
        port: 18083,
        service: Some("no.Such".into()),
    }));
    agent.create(pod(vec![holder, checked, unknown]));
    agent.wait_running("holder");
    let pid = *processes_with(&marker)
        .first()
        .expect("the holder container's process");
    health_server_in(pid, 18083, "podvm.Test");
    agent.wait_for("checked", "ready", |s| s.ready);
    // The server is in the pod's network only: nothing listens here.
    assert!(std::net::TcpStream::connect(("127.0.0.1", 18083)).is_err());
    wait_event(&agent, "unknown", "Unhealthy", "Readiness probe failed:");
    assert!(!agent.container_status("unknown").ready);
}

#[test]
fn post_start_runs_before_running_and_pre_stop_before_the_stop_signal() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = with_volume(polite(&agent, "app", "echo term"));
    app.lifecycle.post_start = Some(hook("sleep 1; echo post-start > /shared/post"));
    // The hook writes into the container's own output, so the log shows
    // what came first.
    app.lifecycle.pre_stop = Some(hook("echo pre-stop > /proc/1/fd/1; sleep 1"));
    let next = with_volume(container(
        "next",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    ));
    let mut spec = pod(vec![app, next]);
    spec.volumes = vec![shared_dir()];
    spec.termination_grace_period_seconds = 20;
    agent.create(spec);
    agent.wait_running("next");
    // postStart ended before the next container started.
    let (post, _, _) = agent.exec("next", &["cat", "/shared/post"], b"");
    assert_eq!(post, "post-start\n");
    let start = Instant::now();
    agent.stop(Duration::from_secs(20));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "preStop's sleep was cut: {took:?}"
    );
    assert!(
        took < Duration::from_secs(20),
        "TERM did not follow preStop: {took:?}"
    );
    assert_eq!(agent.log_text("app"), "up\npre-stop\nterm\n");
    assert_eq!(
        terminated(&agent.container_status("app")),
        (0, "Completed".into(), None)
    );
}

#[test]
fn pre_stop_gets_the_grace_period_and_no_more() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = container("app", &agent.rootfs, &["sleep", "1000"]);
    app.lifecycle.pre_stop = Some(hook("sleep 100"));
    agent.create(pod(vec![app]));
    agent.wait_running("app");
    let start = Instant::now();
    agent.stop(Duration::from_secs(2));
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    // SIGKILL at the end of the grace period (sleep ignores nothing, but
    // preStop held the stop signal back until then).
    assert_eq!(terminated(&agent.container_status("app")).0, 137);
}

#[test]
fn a_failing_post_start_hook_kills_the_container() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = container("app", &agent.rootfs, &["sleep", "1000"]);
    app.lifecycle.post_start = Some(hook("echo no; exit 7"));
    agent.create(pod(vec![app]));
    let ended = agent.wait_terminated("app");
    // `sleep` as the PID 1 of its namespace ignores SIGTERM: SIGKILL once
    // the grace period is over.
    assert_eq!(terminated(&ended).0, 137);
    assert!(has_event(
        &agent,
        "app",
        "FailedPostStartHook",
        "exited with 7"
    ));
    assert!(has_event(&agent, "app", "Killing", "FailedPostStartHook"));
}

#[test]
fn the_images_stop_signal_is_sent() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = container(
        "app",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "trap 'echo got USR1; exit 0' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    app.image_config.stop_signal = Some("SIGUSR1".into());
    agent.create(pod(vec![app]));
    agent.wait_log("app", "ready");
    agent.stop(Duration::from_secs(10));
    assert!(agent.log_text("app").contains("got USR1"));
    assert_eq!(terminated(&agent.container_status("app")).0, 0);
}

#[test]
fn the_active_deadline_fails_the_pod() {
    require_env!();
    let agent = TestAgent::start();
    let mut spec = pod(vec![container("app", &agent.rootfs, &["sleep", "1000"])]);
    spec.active_deadline_seconds = Some(1);
    agent.create(spec);
    let status = wait_status(&agent, "Failed", |s| s.phase == PodPhase::Failed);
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    wait_event(
        &agent,
        "",
        "DeadlineExceeded",
        "longer than the specified deadline",
    );
    let app = agent.wait_terminated("app");
    assert_eq!(terminated(&app).1, "DeadlineExceeded");
}

#[test]
fn an_empty_dir_past_its_size_limit_evicts_the_pod() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = with_volume(container(
        "app",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/shared/big bs=1024 count=2048; exec sleep 1000",
        ],
    ));
    app.volume_mounts = vec![at("/shared")];
    let mut spec = pod(vec![app]);
    spec.volumes = vec![Volume {
        size_limit: Some(1024 * 1024),
        ..shared_dir()
    }];
    agent.create(spec);
    let status = wait_status(&agent, "Evicted", |s| s.phase == PodPhase::Failed);
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert!(
        status.message.as_deref().is_some_and(
            |m| m.starts_with("Usage of EmptyDir volume \"shared\" exceeds the limit \"1Mi\".")
        ),
        "{status:#?}"
    );
    agent.wait_terminated("app");
}

#[test]
fn each_run_has_its_own_log_and_the_previous_one_stays_readable() {
    require_env!();
    let agent = TestAgent::start();
    let app = with_volume(container(
        "app",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "if [ -f /shared/ran ]; then echo second run; exec sleep 1000; fi; touch /shared/ran; echo first run; exit 1",
        ],
    ));
    let steady = container("steady", &agent.rootfs, &["sleep", "1000"]);
    let mut spec = pod(vec![app, steady]);
    spec.restart_policy = RestartPolicy::OnFailure;
    spec.volumes = vec![shared_dir()];
    agent.create(spec);
    agent.wait_for("app", "the second run", |s| {
        s.restart_count == 1 && matches!(s.state, ContainerState::Running { .. })
    });
    assert_eq!(agent.wait_log("app", "second run"), "second run\n");
    let conn = agent.conn();
    let previous = conn.read_previous_log("app", 0, None).unwrap();
    assert!(previous.end);
    let text = String::from_utf8(previous.data).unwrap();
    assert!(text.ends_with(" stdout F first run\n"), "{text}");
    // A container that never restarted has no previous run.
    let none = conn.read_previous_log("steady", 0, None).unwrap_err();
    assert_eq!(none.code(), Some(ttrpc::Code::NOT_FOUND), "{none}");
}

/// The memory cgroup folder of process `pid` (v2: its one cgroup; v1: its
/// `memory` hierarchy's), with the file that limits it.
fn memory_limit_file(pid: i32) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return Some(
                std::path::Path::new("/sys/fs/cgroup/memory")
                    .join(rel)
                    .join("memory.limit_in_bytes"),
            );
        }
        if controllers.is_empty() {
            let v2 = std::path::Path::new("/sys/fs/cgroup")
                .join(rel)
                .join("memory.max");
            if v2.exists() {
                return Some(v2);
            }
        }
    }
    None
}

#[test]
fn a_container_the_oom_killer_ends_is_oom_killed() {
    require_env!();
    let marker = format!("PODVM_OOM_TEST={}", std::process::id());
    let agent = TestAgent::start();
    let mut hog = container(
        "hog",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "while [ ! -f /tmp/go ]; do sleep 0.05; done; exec dd if=/dev/zero of=/dev/null bs=256M count=1",
        ],
    );
    hog.env = vec![podvm_proto::EnvVar {
        name: "PODVM_OOM_TEST".into(),
        value: std::process::id().to_string(),
    }];
    agent.create(pod(vec![hog]));
    agent.wait_running("hog");
    let pid = *processes_with(&marker).first().expect("the hog's process");
    let Some(limit) = memory_limit_file(pid).filter(|f| f.exists()) else {
        podvm_testsupport::skip(
            "oom_killed",
            "the container has no memory cgroup here (the agent found no usable hierarchy)",
        );
        return;
    };
    // A limit as the resources issue will set it (resources are not
    // supported yet): 32 MiB, far below what dd asks for.
    std::fs::write(&limit, "33554432").unwrap();
    let (_, _, code) = agent.exec("hog", &["touch", "/tmp/go"], b"");
    assert_eq!(code, 0);
    let ended = agent.wait_terminated("hog");
    assert_eq!(terminated(&ended), (137, "OOMKilled".into(), None));
}
