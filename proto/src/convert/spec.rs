//! [`SandboxSpec`] ↔ `pb::agent::SandboxSpec`. Off the wire the pod-level
//! rules are checked here: container names unique, a container-level
//! restart policy only `Always` and only on an init container, probes and
//! hooks on an init container only if it is a sidecar, mounts of existing
//! volumes.

use std::collections::HashSet;

use protobuf::{EnumOrUnknown, MessageField};

use super::lifecycle::{
    lifecycle_from_pb, lifecycle_to_pb, policy_from_pb, policy_to_pb, probe_from_pb,
    termination_path_from_pb, ProbeKind,
};
use super::volume::{mounts_from_pb, volumes_from_pb};
use super::{ConvertError, Result};
use crate::pb::agent as pb;
use crate::spec::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
};
use crate::volume::Volume;

fn restart_policy_to_pb(p: RestartPolicy) -> EnumOrUnknown<pb::RestartPolicy> {
    EnumOrUnknown::new(match p {
        RestartPolicy::Always => pb::RestartPolicy::RESTART_POLICY_ALWAYS,
        RestartPolicy::OnFailure => pb::RestartPolicy::RESTART_POLICY_ON_FAILURE,
        RestartPolicy::Never => pb::RestartPolicy::RESTART_POLICY_NEVER,
    })
}

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
            restart_policy: restart_policy_to_pb(s.restart_policy),
            termination_grace_period_seconds: s.termination_grace_period_seconds,
            containers: s.containers.iter().map(pb::ContainerSpec::from).collect(),
            init_containers: s
                .init_containers
                .iter()
                .map(pb::ContainerSpec::from)
                .collect(),
            active_deadline_seconds: s.active_deadline_seconds,
            volumes: s.volumes.iter().map(pb::Volume::from).collect(),
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
                stop_signal: c.image_config.stop_signal.clone(),
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
            restart_policy: c
                .restart_policy
                .map(restart_policy_to_pb)
                .unwrap_or_default(),
            startup_probe: c.startup_probe.as_ref().map(pb::Probe::from).into(),
            liveness_probe: c.liveness_probe.as_ref().map(pb::Probe::from).into(),
            readiness_probe: c.readiness_probe.as_ref().map(pb::Probe::from).into(),
            lifecycle: lifecycle_to_pb(&c.lifecycle),
            termination_message_path: Some(c.termination_message_path.clone()),
            termination_message_policy: policy_to_pb(c.termination_message_policy),
            volume_mounts: c.volume_mounts.iter().map(pb::VolumeMount::from).collect(),
            ..Default::default()
        }
    }
}

/// What a container's checks need from the pod around it.
struct Scope<'a> {
    /// An init container (else a regular one).
    init: bool,
    /// The pod's termination grace period, in seconds.
    grace_period: u64,
    volumes: &'a [Volume],
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
    let volumes = volumes_from_pb(s.volumes, &format!("{field}.volumes"))?;
    let grace_period = s.termination_grace_period_seconds;
    let mut names = HashSet::new();
    let mut containers_from_pb = |list: Vec<pb::ContainerSpec>, init: bool, at: &str| {
        let scope = Scope {
            init,
            grace_period,
            volumes: &volumes,
        };
        list.into_iter()
            .enumerate()
            .map(|(i, c)| {
                let at = format!("{field}.{at}[{i}]");
                if !names.insert(c.name.clone()) {
                    return Err(ConvertError::duplicate(format!("{at}.name"), &c.name));
                }
                container_from_pb(c, &scope, &at)
            })
            .collect::<Result<Vec<_>>>()
    };
    let init_containers = containers_from_pb(s.init_containers, true, "initContainers")?;
    let containers = containers_from_pb(s.containers, false, "containers")?;
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
        init_containers,
        containers,
        active_deadline_seconds: match s.active_deadline_seconds {
            Some(d) if d == 0 || d > i32::MAX as u64 => {
                return Err(ConvertError::invalid(
                    format!("{field}.activeDeadlineSeconds"),
                    d,
                    "must be between 1 and 2147483647, inclusive",
                ))
            }
            d => d,
        },
        volumes,
    })
}

/// The container-level restart policy: `Always` on an init container (a
/// sidecar), nothing elsewhere.
fn container_restart_policy(
    p: EnumOrUnknown<pb::RestartPolicy>,
    init: bool,
    field: &str,
) -> Result<Option<RestartPolicy>> {
    let field = format!("{field}.restartPolicy");
    let (policy, name) = match p.enum_value() {
        Ok(pb::RestartPolicy::RESTART_POLICY_UNSPECIFIED) => return Ok(None),
        Ok(pb::RestartPolicy::RESTART_POLICY_ALWAYS) => (RestartPolicy::Always, "Always"),
        Ok(pb::RestartPolicy::RESTART_POLICY_ON_FAILURE) => (RestartPolicy::OnFailure, "OnFailure"),
        Ok(pb::RestartPolicy::RESTART_POLICY_NEVER) => (RestartPolicy::Never, "Never"),
        Err(v) => return Err(ConvertError::unknown_enum(field, v)),
    };
    if !init {
        return Err(ConvertError::forbidden(
            field,
            "may not be set for non-init containers",
        ));
    }
    if policy != RestartPolicy::Always {
        return Err(ConvertError::new(
            field,
            format!("Unsupported value: {name:?}: supported values: \"Always\""),
        ));
    }
    Ok(Some(policy))
}

fn container_from_pb(
    c: pb::ContainerSpec,
    scope: &Scope<'_>,
    field: &str,
) -> Result<ContainerSpec> {
    let image_config = c.image_config.into_option().unwrap_or_default();
    let rootfs = rootfs_from_pb(c.rootfs.into_option(), &format!("{field}.rootfs"))?;
    let restart_policy = container_restart_policy(c.restart_policy, scope.init, field)?;
    // Only sidecars may have probes and hooks among init containers.
    let plain_init = scope.init && restart_policy.is_none();
    let forbid_on_plain_init = |set: bool, name: &str| {
        if plain_init && set {
            return Err(ConvertError::forbidden(
                format!("{field}.{name}"),
                "may not be set for init containers without restartPolicy=Always",
            ));
        }
        Ok(())
    };
    forbid_on_plain_init(c.lifecycle.is_some(), "lifecycle")?;
    let probe = |p: MessageField<pb::Probe>, kind: ProbeKind| {
        forbid_on_plain_init(p.is_some(), kind.field())?;
        p.into_option()
            .map(|p| probe_from_pb(p, kind, &format!("{field}.{}", kind.field())))
            .transpose()
    };
    let startup_probe = probe(c.startup_probe, ProbeKind::Startup)?;
    let liveness_probe = probe(c.liveness_probe, ProbeKind::Liveness)?;
    let readiness_probe = probe(c.readiness_probe, ProbeKind::Readiness)?;
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
            stop_signal: image_config.stop_signal,
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
        restart_policy,
        startup_probe,
        liveness_probe,
        readiness_probe,
        lifecycle: lifecycle_from_pb(
            c.lifecycle.into_option(),
            scope.grace_period,
            &format!("{field}.lifecycle"),
        )?,
        termination_message_path: termination_path_from_pb(
            c.termination_message_path,
            &format!("{field}.terminationMessagePath"),
        )?,
        termination_message_policy: policy_from_pb(
            c.termination_message_policy,
            &format!("{field}.terminationMessagePolicy"),
        )?,
        volume_mounts: mounts_from_pb(
            c.volume_mounts,
            scope.volumes,
            &format!("{field}.volumeMounts"),
        )?,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
