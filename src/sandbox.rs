//! Turns a validated Pod and the local image store into what the VM needs:
//! the agent's [`SandboxSpec`] and the read-only image disks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use podvm_image::{ImageRecord, ImageStore};
use podvm_proto::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
};

use crate::hypervisor::DiskConfig;

/// Filesystem type of the image disks the store builds.
const IMAGE_FSTYPE: &str = "erofs";
/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: u64 = 30;

/// The sandbox spec plus the disks it refers to.
pub struct Sandbox {
    pub spec: SandboxSpec,
    pub disks: Vec<DiskConfig>,
}

/// Resolves every container's image and builds the sandbox. Fails, naming
/// the field, when an image is not in the store.
pub fn build(pod: &Pod, store: &ImageStore) -> Result<Sandbox> {
    let spec = pod.spec.as_ref().context("spec: Required value")?;
    let (namespace, name) = crate::manifest::pod_key(pod)?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();

    // One disk per distinct image, in first-use order.
    let mut disks: Vec<DiskConfig> = Vec::new();
    let mut serial_of: BTreeMap<String, String> = BTreeMap::new();
    let mut containers = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let image_ref = c.image.as_deref().unwrap_or_default();
        let image = store.resolve(image_ref).map_err(|e| {
            anyhow!(
                "spec.containers[{i}].image: image {image_ref:?} is not in the local store ({e}); load it with `podvm image load -i FILE`"
            )
        })?;
        let serial = match serial_of.get(&image.id) {
            Some(s) => s.clone(),
            None => {
                let path: PathBuf = store
                    .disk_image(&image)
                    .with_context(|| format!("cannot build the disk image of {image_ref}"))?;
                let serial = format!("podvm-img{}", disks.len());
                disks.push(DiskConfig {
                    path,
                    read_only: true,
                    serial: serial.clone(),
                });
                serial_of.insert(image.id.clone(), serial.clone());
                serial
            }
        };
        containers.push(container_spec(pod, spec, c, &image, serial)?);
    }

    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| hostname_from(&name));
    let host_aliases = spec
        .host_aliases
        .iter()
        .flatten()
        .map(|a| HostAlias {
            ip: a.ip.clone(),
            hostnames: a.hostnames.clone().unwrap_or_default(),
        })
        .collect();
    let restart_policy = match spec.restart_policy.as_deref() {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    };
    let grace = spec
        .termination_grace_period_seconds
        .map(|g| g.max(0) as u64)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    Ok(Sandbox {
        spec: SandboxSpec {
            name,
            namespace,
            uid,
            hostname,
            host_aliases,
            restart_policy,
            termination_grace_period_seconds: grace,
            containers,
        },
        disks,
    })
}

fn container_spec(
    pod: &Pod,
    spec: &PodSpec,
    c: &Container,
    image: &ImageRecord,
    serial: String,
) -> Result<ContainerSpec> {
    let pod_sc = spec.security_context.as_ref();
    let c_sc = c.security_context.as_ref();
    let id = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    let env = c
        .env
        .iter()
        .flatten()
        .map(|e| EnvVar {
            name: e.name.clone(),
            value: match e.value_from.as_ref().and_then(|f| f.field_ref.as_ref()) {
                Some(fr) => field_value(pod, &fr.field_path),
                None => e.value.clone().unwrap_or_default(),
            },
        })
        .collect();
    Ok(ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: image.id.clone(),
        image_config: ImageConfig {
            entrypoint: image.config.entrypoint.clone(),
            cmd: image.config.cmd.clone(),
            env: image.config.env.clone(),
            working_dir: image.config.working_dir.clone().filter(|w| !w.is_empty()),
            user: image.config.user.clone().filter(|u| !u.is_empty()),
        },
        rootfs: RootfsSource::BlockSerial {
            serial,
            fstype: IMAGE_FSTYPE.into(),
        },
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        env,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        run_as_user: id(c_sc.and_then(|s| s.run_as_user))
            .or(id(pod_sc.and_then(|s| s.run_as_user))),
        run_as_group: id(c_sc.and_then(|s| s.run_as_group))
            .or(id(pod_sc.and_then(|s| s.run_as_group))),
        supplemental_groups: pod_sc
            .and_then(|s| s.supplemental_groups.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| u32::try_from(g).ok())
            .collect(),
    })
}

/// The value of a supported `fieldRef.fieldPath` (validated earlier).
fn field_value(pod: &Pod, path: &str) -> String {
    let m = &pod.metadata;
    match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_else(|| "default".into()),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => node_name(),
        _ => String::new(),
    }
}

/// The node a pod runs on: this host.
pub fn node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Kubernetes uses the pod name as hostname, cut to 63 characters and
/// without a trailing '-' or '.'.
fn hostname_from(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_follow_kubelet() {
        assert_eq!(hostname_from("web"), "web");
        let long = format!("{}-{}", "a".repeat(62), "b");
        assert_eq!(hostname_from(&long), "a".repeat(62));
    }
}
