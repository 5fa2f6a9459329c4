//! emptyDir volumes and the termination-message file, through a real
//! agent in host mode: containers of a pod share a volume, read-only and
//! `subPath` mounts, a `medium: Memory` tmpfs with its size limit, and the
//! termination log at its default and at a custom path.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{container, field, pod, terminated, TestAgent};
use podvm_proto::{ContainerState, EmptyDirMedium, Volume, VolumeMount};

fn dir_volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        medium: EmptyDirMedium::Directory,
        size_limit: None,
    }
}

fn mount(name: &str, path: &str, read_only: bool, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only,
        sub_path: sub_path.map(str::to_string),
    }
}

#[test]
fn containers_share_an_empty_dir() {
    require_env!();
    let agent = TestAgent::start();
    let mut writer = container(
        "writer",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "echo mode=$(stat -c %a /data); echo hello > /data/greeting; echo done; exec sleep 1000",
        ],
    );
    writer.volume_mounts = vec![mount("data", "/data", false, None)];
    let mut reader = container(
        "reader",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "while [ ! -f /shared/greeting ]; do sleep 0.05; done; \
             echo got=$(cat /shared/greeting); \
             touch /ro/nope 2>/dev/null; echo ro_write=$?; \
             grep -q ' /ro ' /proc/mounts && echo ro_mounted=yes; \
             echo done; exec sleep 1000",
        ],
    );
    reader.volume_mounts = vec![
        mount("data", "/shared", false, None),
        mount("data", "/ro", true, None),
    ];
    let mut spec = pod(vec![writer, reader]);
    spec.volumes = vec![dir_volume("data")];
    agent.create(spec);

    let w = agent.wait_log("writer", "done");
    assert_eq!(field(&w, "mode"), Some("777"), "{w}");
    let r = agent.wait_log("reader", "done");
    assert_eq!(field(&r, "got"), Some("hello"), "{r}");
    assert_eq!(field(&r, "ro_mounted"), Some("yes"), "{r}");
    assert_ne!(
        field(&r, "ro_write"),
        Some("0"),
        "a read-only mount took a write: {r}"
    );
    let (out, _, code) = agent.exec("reader", &["cat", "/ro/greeting"], b"");
    assert_eq!((out.as_str(), code), ("hello\n", 0));
    let (_, err, code) = agent.exec("reader", &["sh", "-c", "echo x > /ro/new"], b"");
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn a_sub_path_mount_sees_only_its_directory() {
    require_env!();
    let agent = TestAgent::start();
    let mut whole = container(
        "whole",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "echo top > /all/top-file; echo done; exec sleep 1000",
        ],
    );
    whole.volume_mounts = vec![mount("data", "/all", false, None)];
    let mut part = container(
        "part",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "echo listing=$(ls -A /only | tr '\\n' ' '); echo inside > /only/from-part; \
             echo done; exec sleep 1000",
        ],
    );
    part.volume_mounts = vec![mount("data", "/only", false, Some("sub/dir"))];
    let mut spec = pod(vec![whole, part]);
    spec.volumes = vec![dir_volume("data")];
    agent.create(spec);

    let p = agent.wait_log("part", "done");
    agent.wait_log("whole", "done");
    // Created by the agent (empty), and nothing of the volume's top level.
    assert_eq!(field(&p, "listing").map(str::trim), Some(""), "{p}");
    let (out, _, code) = agent.exec("whole", &["cat", "/all/sub/dir/from-part"], b"");
    assert_eq!((out.as_str(), code), ("inside\n", 0));
    let (_, _, code) = agent.exec("part", &["ls", "/only/top-file"], b"");
    assert_ne!(code, 0, "the subPath mount shows the volume's root");
}

#[test]
fn a_sub_path_may_not_leave_the_volume() {
    require_env!();
    let agent = TestAgent::start();
    // The first container plants a symlink out of the volume, then exits
    // so that the second one, which mounts through it, is created after.
    let mut planter = container(
        "planter",
        &agent.rootfs,
        &["sh", "-c", "ln -s /etc /data/evil && echo planted"],
    );
    planter.volume_mounts = vec![mount("data", "/data", false, None)];
    let mut victim = container("victim", &agent.rootfs, &["sh", "-c", "ls /escaped"]);
    victim.volume_mounts = vec![mount("data", "/escaped", false, Some("evil"))];
    let mut spec = pod(vec![victim]);
    spec.init_containers = vec![planter];
    spec.volumes = vec![dir_volume("data")];
    agent.create(spec);

    agent.wait_log("planter", "planted");
    let status = agent.wait_for("victim", "a subPath error", |s| {
        matches!(&s.state, ContainerState::Waiting { message: Some(m), .. } if m.contains("subPath"))
    });
    let ContainerState::Waiting { reason, message } = &status.state else {
        unreachable!()
    };
    assert_eq!(reason, "CreateContainerConfigError");
    assert_eq!(
        message.as_deref(),
        Some("failed to prepare subPath for volumeMount \"data\" of container \"victim\"")
    );
}

#[test]
fn a_memory_volume_is_a_sized_tmpfs() {
    require_env!();
    let agent = TestAgent::start();
    let mut c = container(
        "app",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "echo mount=$(grep ' /cache ' /proc/mounts); echo mode=$(stat -c %a /cache); \
             dd if=/dev/zero of=/cache/big bs=1024 count=2048 2>/dev/null; echo dd=$?; \
             echo done; exec sleep 1000",
        ],
    );
    c.volume_mounts = vec![mount("cache", "/cache", false, None)];
    let mut spec = pod(vec![c]);
    spec.volumes = vec![Volume {
        name: "cache".into(),
        medium: EmptyDirMedium::Memory,
        size_limit: Some(1 << 20),
    }];
    agent.create(spec);
    let log = agent.wait_log("app", "done");
    let line = field(&log, "mount").unwrap_or_default();
    assert!(line.starts_with("tmpfs /cache tmpfs rw"), "{log}");
    assert!(line.contains("size=1024k"), "{log}");
    assert_eq!(field(&log, "mode"), Some("1777"), "{log}");
    assert_ne!(
        field(&log, "dd"),
        Some("0"),
        "wrote 2 MiB into 1 MiB: {log}"
    );
}

#[test]
fn the_termination_log_is_writable_at_its_path() {
    require_env!();
    let agent = TestAgent::start();
    let default_path = container(
        "default-path",
        &agent.rootfs,
        &[
            "sh",
            "-c",
            "echo perms=$(stat -c %a /dev/termination-log); echo bye > /dev/termination-log",
        ],
    );
    let mut custom = container(
        "custom-path",
        &agent.rootfs,
        &["sh", "-c", "echo custom > /var/msg/why; exit 3"],
    );
    custom.termination_message_path = "/var/msg/why".into();
    agent.create(pod(vec![default_path, custom]));

    let done = agent.wait_terminated("default-path");
    let custom = agent.wait_terminated("custom-path");
    let log = agent.log_text("default-path");
    assert_eq!(field(&log, "perms"), Some("666"), "{log}");
    let file = |name: &str| {
        std::fs::read_to_string(
            agent
                .run_dir
                .join("containers")
                .join(name)
                .join("termination-log"),
        )
        .unwrap()
    };
    assert_eq!(file("default-path"), "bye\n");
    assert_eq!(file("custom-path"), "custom\n");
    assert_eq!(
        terminated(&done),
        (0, "Completed".into(), Some("bye\n".into()))
    );
    assert_eq!(
        terminated(&custom),
        (3, "Error".into(), Some("custom\n".into()))
    );
}
