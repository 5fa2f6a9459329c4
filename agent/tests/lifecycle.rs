//! Sandbox lifecycle: stop, shutdown and cleanup, restart policy,
//! repeated creation, invalid specs, SIGTERM.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use common::{code_of, container, pod, processes_with, terminated, TestAgent};
use podvm_proto::{ContainerState, RestartPolicy};
use ttrpc::Code;

#[test]
fn stop_sandbox_terminates_within_the_grace_period() {
    require_env!();
    let agent = TestAgent::start();
    agent.create(pod(vec![
        container("sleeper", &agent.rootfs, &["sleep", "1000"]),
        container(
            "polite",
            &agent.rootfs,
            &[
                "sh",
                "-c",
                "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done",
            ],
        ),
    ]));
    agent.wait_running("sleeper");
    agent.wait_log("polite", "ready");

    let start = Instant::now();
    agent.stop(Duration::from_secs(2));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(8), "stop took {took:?}");

    let status = agent.status();
    assert!(!status.sandbox_ready);
    let sleeper = agent.container_status("sleeper");
    assert_eq!(terminated(&sleeper), (137, "Error".into(), None));
    assert!(matches!(
        sleeper.state,
        ContainerState::Terminated {
            signal: Some(9),
            ..
        }
    ));
    assert_eq!(
        terminated(&agent.container_status("polite")),
        (0, "Completed".into(), None)
    );
    assert!(agent.log_text("polite").contains("got TERM"));
    // The overlays, image and shm mounts are gone; only the run dir remains.
    let run = agent.run_dir.to_string_lossy().into_owned();
    assert_eq!(agent.mounts_left(), vec![run]);

    let again = agent.try_create(&pod(vec![container("x", &agent.rootfs, &["true"])]));
    assert_eq!(code_of(again), Code::FAILED_PRECONDITION);
}

#[test]
fn shutdown_exits_cleanly_and_leaves_nothing_behind() {
    require_env!();
    let marker = format!("PODVM_TEST_MARKER={}", std::process::id());
    let (key, value) = marker.split_once('=').unwrap();
    let mut agent = TestAgent::start_with_env(&[(key, value)]);
    let mut sleeper = container("sleeper", &agent.rootfs, &["sleep", "1000"]);
    sleeper.env = vec![podvm_proto::EnvVar {
        name: key.into(),
        value: value.into(),
    }];
    agent.create(pod(vec![sleeper]));
    agent.wait_running("sleeper");
    assert!(
        !processes_with(&marker).is_empty(),
        "the marker finds nothing"
    );

    assert_eq!(agent.shutdown(), 0);
    assert!(
        agent.mounts_left().is_empty(),
        "mounts left: {:?}",
        agent.mounts_left()
    );
    assert!(!agent.socket.exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(&marker);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn invalid_specs_are_rejected() {
    require_env!();
    let agent = TestAgent::start();
    let mut bad = pod(vec![container("../escape", &agent.rootfs, &["true"])]);
    assert_eq!(code_of(agent.try_create(&bad)), Code::INVALID_ARGUMENT);
    bad.containers[0].name = "ok".into();
    bad.hostname = "bad\nhost".into();
    assert_eq!(code_of(agent.try_create(&bad)), Code::INVALID_ARGUMENT);
    // Nothing was created, so a valid spec still works.
    agent.create(pod(vec![container("fine", &agent.rootfs, &["true"])]));
    agent.wait_terminated("fine");
}

#[test]
fn restart_policy_and_backoff() {
    require_env!();
    let agent = TestAgent::start();
    let mut spec = pod(vec![
        container("fails", &agent.rootfs, &["sh", "-c", "echo run; exit 1"]),
        container("succeeds", &agent.rootfs, &["true"]),
    ]);
    spec.restart_policy = RestartPolicy::OnFailure;
    agent.create(spec);

    // OnFailure: the failing one is restarted at once, then backs off 10 s.
    let backing_off = agent.wait_for("fails", "CrashLoopBackOff", |s| {
        matches!(&s.state, ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff")
    });
    assert_eq!(backing_off.restart_count, 1);
    let ContainerState::Waiting {
        message: Some(message),
        ..
    } = &backing_off.state
    else {
        panic!()
    };
    assert!(
        message.starts_with("back-off 10s restarting failed container=fails pod=testpod_default("),
        "{message}"
    );
    let last = backing_off.last_state.clone().expect("no last state");
    assert!(
        matches!(last, ContainerState::Terminated { exit_code: 1, .. }),
        "{last:?}"
    );
    // Each run has its log, as kubelet keeps them: the latest and the one
    // before.
    assert_eq!(agent.log_text("fails"), "run\n");
    assert_eq!(agent.previous_log_text("fails"), "run\n");

    // The successful one is not restarted under OnFailure.
    let ok = agent.wait_terminated("succeeds");
    assert_eq!(ok.restart_count, 0);

    // Stopping during back-off: no more restarts, the last run is the state.
    agent.stop(Duration::from_secs(1));
    let stopped = agent.container_status("fails");
    assert_eq!(terminated(&stopped).0, 1);
    assert_eq!(stopped.restart_count, 1);
}

#[test]
fn restart_always_gives_a_new_container_and_fresh_rootfs() {
    require_env!();
    let agent = TestAgent::start();
    let mut spec = pod(vec![container(
        "again",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "if [ -e /marker ]; then echo stale; fi; touch /marker; echo pass; sleep 3",
        ],
    )]);
    spec.restart_policy = RestartPolicy::Always;
    agent.create(spec);
    // The first run lasts 3 s: its id is visible right after creation.
    let first = agent.container_status("again");
    assert_eq!(first.restart_count, 0);
    let first_id = first.container_id;
    agent.wait_for("again", "one restart", |s| s.restart_count >= 1);
    agent.wait_log("again", "pass\n");
    let now = agent.container_status("again");
    assert_ne!(now.container_id, first_id);
    assert_eq!(
        agent.log_text("again"),
        "pass\n",
        "the upper layer was reused"
    );
    assert!(
        matches!(now.last_state, Some(ContainerState::Terminated { exit_code: 0, ref reason, .. }) if reason == "Completed")
    );
}

#[test]
fn sigterm_in_host_mode_stops_everything_like_shutdown() {
    require_env!();
    let mut agent = TestAgent::start();
    agent.create(pod(vec![container(
        "sleeper",
        &agent.rootfs,
        &["sleep", "1000"],
    )]));
    agent.wait_running("sleeper");
    let pid = nix::unistd::Pid::from_raw(agent.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(agent.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        agent.mounts_left().is_empty(),
        "mounts left: {:?}",
        agent.mounts_left()
    );
}
