//! [`SandboxSpec`] ↔ `pb::agent::SandboxSpec`.

use protobuf::{EnumOrUnknown, MessageField};

use super::{ConvertError, Result};
use crate::pb::agent as pb;
use crate::spec::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
};

impl From<&SandboxSpec> for pb::SandboxSpec {
    fn from(s: &SandboxSpec) -> Self {
        pb::SandboxSpec {
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            uid: s.uid.clone(),
            hostname: s.hostname.clone(),
            host_aliases: s
                .host_aliases
                .iter()
                .map(|a| pb::HostAlias {
                    ip: a.ip.clone(),
                    hostnames: a.hostnames.clone(),
                    ..Default::default()
                })
                .collect(),
            restart_policy: EnumOrUnknown::new(match s.restart_policy {
                RestartPolicy::Always => pb::RestartPolicy::RESTART_POLICY_ALWAYS,
                RestartPolicy::OnFailure => pb::RestartPolicy::RESTART_POLICY_ON_FAILURE,
                RestartPolicy::Never => pb::RestartPolicy::RESTART_POLICY_NEVER,
            }),
            termination_grace_period_seconds: s.termination_grace_period_seconds,
            containers: s.containers.iter().map(pb::ContainerSpec::from).collect(),
            ..Default::default()
        }
    }
}

/// A root filesystem source on the wire.
pub(crate) fn rootfs_to_pb(rootfs: &RootfsSource) -> pb::Rootfs {
    let source = match rootfs {
        RootfsSource::BlockSerial { serial, fstype } => {
            pb::rootfs::Source::Block(pb::BlockRootfs {
                serial: serial.clone(),
                fstype: fstype.clone(),
                ..Default::default()
            })
        }
        RootfsSource::Directory { path } => {
            pb::rootfs::Source::Directory(path.to_string_lossy().into_owned())
        }
    };
    pb::Rootfs {
        source: Some(source),
        ..Default::default()
    }
}

/// A root filesystem source off the wire (`field` names it).
pub(crate) fn rootfs_from_pb(rootfs: Option<pb::Rootfs>, field: &str) -> Result<RootfsSource> {
    match rootfs.and_then(|r| r.source) {
        Some(pb::rootfs::Source::Block(b)) => Ok(RootfsSource::BlockSerial {
            serial: b.serial,
            fstype: b.fstype,
        }),
        Some(pb::rootfs::Source::Directory(path)) => {
            Ok(RootfsSource::Directory { path: path.into() })
        }
        None => Err(ConvertError::required(field)),
    }
}

impl From<&ContainerSpec> for pb::ContainerSpec {
    fn from(c: &ContainerSpec) -> Self {
        pb::ContainerSpec {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: c.image_id.clone(),
            image_config: MessageField::some(pb::ImageConfig {
                entrypoint: c.image_config.entrypoint.clone(),
                cmd: c.image_config.cmd.clone(),
                env: c.image_config.env.clone(),
                working_dir: c.image_config.working_dir.clone(),
                user: c.image_config.user.clone(),
                ..Default::default()
            }),
            rootfs: MessageField::some(rootfs_to_pb(&c.rootfs)),
            command: c.command.clone(),
            args: c.args.clone(),
            env: c
                .env
                .iter()
                .map(|e| pb::EnvVar {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    ..Default::default()
                })
                .collect(),
            working_dir: c.working_dir.clone(),
            run_as_user: c.run_as_user,
            run_as_group: c.run_as_group,
            supplemental_groups: c.supplemental_groups.clone(),
            ..Default::default()
        }
    }
}

/// Checks and converts a sandbox spec off the wire (`field` names it).
pub fn sandbox_from_pb(s: pb::SandboxSpec, field: &str) -> Result<SandboxSpec> {
    let restart_policy = match s.restart_policy.enum_value() {
        Ok(pb::RestartPolicy::RESTART_POLICY_ALWAYS) => RestartPolicy::Always,
        Ok(pb::RestartPolicy::RESTART_POLICY_ON_FAILURE) => RestartPolicy::OnFailure,
        Ok(pb::RestartPolicy::RESTART_POLICY_NEVER) => RestartPolicy::Never,
        Ok(pb::RestartPolicy::RESTART_POLICY_UNSPECIFIED) => {
            return Err(ConvertError::required(format!("{field}.restartPolicy")))
        }
        Err(v) => {
            return Err(ConvertError::unknown_enum(
                format!("{field}.restartPolicy"),
                v,
            ))
        }
    };
    let containers = s
        .containers
        .into_iter()
        .enumerate()
        .map(|(i, c)| container_from_pb(c, &format!("{field}.containers[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SandboxSpec {
        name: s.name,
        namespace: s.namespace,
        uid: s.uid,
        hostname: s.hostname,
        host_aliases: s
            .host_aliases
            .into_iter()
            .map(|a| HostAlias {
                ip: a.ip,
                hostnames: a.hostnames,
            })
            .collect(),
        restart_policy,
        termination_grace_period_seconds: s.termination_grace_period_seconds,
        containers,
    })
}

fn container_from_pb(c: pb::ContainerSpec, field: &str) -> Result<ContainerSpec> {
    let image_config = c.image_config.into_option().unwrap_or_default();
    let rootfs = rootfs_from_pb(c.rootfs.into_option(), &format!("{field}.rootfs"))?;
    Ok(ContainerSpec {
        name: c.name,
        image: c.image,
        image_id: c.image_id,
        image_config: ImageConfig {
            entrypoint: image_config.entrypoint,
            cmd: image_config.cmd,
            env: image_config.env,
            working_dir: image_config.working_dir,
            user: image_config.user,
        },
        rootfs,
        command: c.command,
        args: c.args,
        env: c
            .env
            .into_iter()
            .map(|e| EnvVar {
                name: e.name,
                value: e.value,
            })
            .collect(),
        working_dir: c.working_dir,
        run_as_user: c.run_as_user,
        run_as_group: c.run_as_group,
        supplemental_groups: c.supplemental_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
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
            containers: vec![ContainerSpec {
                name: "app".into(),
                image: "busybox".into(),
                image_id: "sha256:00".into(),
                image_config: ImageConfig {
                    entrypoint: vec!["sh".into()],
                    cmd: vec![],
                    env: vec!["PATH=/bin".into()],
                    working_dir: Some("/".into()),
                    user: None,
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
            }],
        }
    }

    #[test]
    fn round_trip() {
        let s = spec();
        assert_eq!(
            sandbox_from_pb(pb::SandboxSpec::from(&s), "sandbox").unwrap(),
            s
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        let mut wire = pb::SandboxSpec::from(&spec());
        wire.containers[0].rootfs = MessageField::none();
        let e = sandbox_from_pb(wire, "sandbox").unwrap_err();
        assert_eq!(e.field, "sandbox.containers[0].rootfs");
        let mut wire = pb::SandboxSpec::from(&spec());
        wire.restart_policy = EnumOrUnknown::from_i32(42);
        let e = sandbox_from_pb(wire, "sandbox").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sandbox.restartPolicy: Unsupported value: 42"
        );
    }
}
