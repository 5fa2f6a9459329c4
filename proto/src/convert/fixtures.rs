//! Fully populated typed values for the conversion tests: every field set,
//! every new (2.3) message present, so a round trip loses nothing unseen.

use crate::lifecycle::{
    HookAction, HttpGet, HttpScheme, Lifecycle, Probe, ProbeAction, TerminationMessagePolicy,
};
use crate::spec::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
};
use crate::status::{
    ContainerState, ContainerStatus, PodCondition, PodConditionType, PodPhase, SandboxStatus,
};
use crate::volume::{EmptyDirMedium, Volume, VolumeMount};

fn http_get() -> HttpGet {
    HttpGet {
        host: Some("127.0.0.1".into()),
        port: 8080,
        path: "/healthz".into(),
        scheme: HttpScheme::Https,
        headers: vec![("X-Probe".into(), "1".into())],
    }
}

fn container(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox".into(),
        image_id: "sha256:00".into(),
        image_config: ImageConfig {
            entrypoint: vec!["sh".into()],
            cmd: vec![],
            env: vec!["PATH=/bin".into()],
            working_dir: Some("/".into()),
            user: None,
            stop_signal: Some("SIGQUIT".into()),
        },
        rootfs: RootfsSource::BlockSerial {
            serial: "podvm-img0".into(),
            fstype: "erofs".into(),
        },
        command: vec!["sleep".into()],
        args: vec!["1".into()],
        env: vec![EnvVar {
            name: "A".into(),
            value: "b".into(),
        }],
        working_dir: None,
        run_as_user: Some(1000),
        run_as_group: None,
        supplemental_groups: vec![5],
        restart_policy: None,
        startup_probe: Some(Probe {
            initial_delay_seconds: 2,
            termination_grace_period_seconds: Some(5),
            ..Probe::with_defaults(ProbeAction::Exec {
                command: vec!["true".into()],
            })
        }),
        liveness_probe: Some(Probe::with_defaults(ProbeAction::TcpSocket {
            host: None,
            port: 80,
        })),
        readiness_probe: Some(Probe {
            success_threshold: 2,
            ..Probe::with_defaults(ProbeAction::HttpGet(http_get()))
        }),
        lifecycle: Lifecycle {
            post_start: Some(HookAction::HttpGet(http_get())),
            pre_stop: Some(HookAction::Sleep { seconds: 3 }),
        },
        termination_message_path: "/tmp/msg".into(),
        termination_message_policy: TerminationMessagePolicy::FallbackToLogsOnError,
        volume_mounts: vec![
            VolumeMount {
                name: "scratch".into(),
                mount_path: "/data".into(),
                read_only: true,
                sub_path: Some("a/b".into()),
            },
            VolumeMount {
                name: "mem".into(),
                mount_path: "/cache".into(),
                read_only: false,
                sub_path: None,
            },
        ],
    }
}

/// A pod with a plain init container, a sidecar and a main container.
pub(crate) fn spec() -> SandboxSpec {
    let mut init = container("init");
    init.startup_probe = None;
    init.liveness_probe = None;
    init.readiness_probe = None;
    init.lifecycle = Lifecycle::default();
    let mut sidecar = container("sidecar");
    sidecar.restart_policy = Some(RestartPolicy::Always);
    sidecar.liveness_probe = Some(Probe::with_defaults(ProbeAction::Grpc {
        port: 9090,
        service: Some("health".into()),
    }));
    sidecar.lifecycle.post_start = Some(HookAction::Exec {
        command: vec!["touch".into(), "/ready".into()],
    });
    SandboxSpec {
        name: "demo".into(),
        namespace: "default".into(),
        uid: "u-1".into(),
        hostname: "demo".into(),
        host_aliases: vec![HostAlias {
            ip: "10.0.0.1".into(),
            hostnames: vec!["a".into(), "b".into()],
        }],
        restart_policy: RestartPolicy::OnFailure,
        termination_grace_period_seconds: 7,
        init_containers: vec![init, sidecar],
        containers: vec![container("app")],
        active_deadline_seconds: Some(600),
        volumes: vec![
            Volume {
                name: "scratch".into(),
                medium: EmptyDirMedium::BlockSerial {
                    serial: "podvm-ed0".into(),
                },
                size_limit: Some(1 << 20),
            },
            Volume {
                name: "mem".into(),
                medium: EmptyDirMedium::Memory,
                size_limit: None,
            },
            Volume {
                name: "dir".into(),
                medium: EmptyDirMedium::Directory,
                size_limit: None,
            },
        ],
    }
}

fn container_status(name: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        container_id: format!("podvm://{name}"),
        image: "busybox".into(),
        image_id: "sha256:00".into(),
        state: ContainerState::Running {
            started_at: "2026-12-01T00:00:01Z".into(),
        },
        last_state: Some(ContainerState::Terminated {
            exit_code: 137,
            signal: Some(9),
            reason: "Error".into(),
            message: Some("killed".into()),
            started_at: Some("2026-12-01T00:00:00Z".into()),
            finished_at: "2026-12-01T00:00:00Z".into(),
        }),
        restart_count: 1,
        ready: true,
        started: true,
    }
}

/// A failed pod's status with every field set.
pub(crate) fn status() -> SandboxStatus {
    SandboxStatus {
        sandbox_ready: true,
        started_at: Some("2026-12-01T00:00:00Z".into()),
        phase: PodPhase::Failed,
        reason: Some("DeadlineExceeded".into()),
        message: Some("Pod was active on the node longer than the specified deadline".into()),
        conditions: vec![
            PodCondition {
                condition_type: PodConditionType::PodReadyToStartContainers,
                status: true,
                reason: None,
                message: None,
                last_transition_time: "2026-12-01T00:00:00Z".into(),
            },
            PodCondition {
                condition_type: PodConditionType::Initialized,
                status: true,
                reason: None,
                message: None,
                last_transition_time: "2026-12-01T00:00:01Z".into(),
            },
            PodCondition {
                condition_type: PodConditionType::ContainersReady,
                status: false,
                reason: Some("ContainersNotReady".into()),
                message: Some("containers with unready status: [app]".into()),
                last_transition_time: "2026-12-01T00:00:02Z".into(),
            },
        ],
        init_containers: vec![ContainerStatus {
            state: ContainerState::Waiting {
                reason: "PodInitializing".into(),
                message: None,
            },
            last_state: None,
            restart_count: 0,
            ready: false,
            started: false,
            ..container_status("init")
        }],
        containers: vec![container_status("app")],
        agent_rss_kib: Some(900),
    }
}
