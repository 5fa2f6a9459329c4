//! A pod's `emptyDir` volumes and its containers' mounts as the agent takes
//! them. A disk emptyDir (`medium: ""`) becomes a scratch disk the owner
//! creates before the VM starts; a `Memory` one a tmpfs in the guest.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use podvm_proto::{EmptyDirMedium, Volume, VolumeMount};

use crate::manifest::quantity::parse_bytes;
use crate::scratch::ScratchDisk;

/// The pod's volumes and the scratch disks behind the disk ones.
pub struct Volumes {
    pub volumes: Vec<Volume>,
    pub scratch: Vec<ScratchDisk>,
}

/// Converts validated `spec.volumes` (all `emptyDir`).
pub fn volumes(spec: &PodSpec) -> Result<Volumes> {
    let mut out = Volumes {
        volumes: Vec::new(),
        scratch: Vec::new(),
    };
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let ed = v.empty_dir.as_ref().ok_or_else(|| {
            anyhow!("spec.volumes[{i}]: Required value: must specify a volume type")
        })?;
        let size_limit = ed
            .size_limit
            .as_ref()
            .map(|q| {
                parse_bytes(&q.0).map_err(|e| anyhow!("spec.volumes[{i}].emptyDir.sizeLimit: {e}"))
            })
            .transpose()?;
        let medium = match ed.medium.as_deref().unwrap_or_default() {
            "Memory" => EmptyDirMedium::Memory,
            "" => {
                let disk = ScratchDisk::new(out.scratch.len(), size_limit);
                let serial = disk.serial.clone();
                out.scratch.push(disk);
                EmptyDirMedium::BlockSerial { serial }
            }
            other => {
                return Err(anyhow!(
                    "spec.volumes[{i}].emptyDir.medium: Unsupported value: {other:?}"
                ))
            }
        };
        out.volumes.push(Volume {
            name: v.name.clone(),
            medium,
            size_limit,
        });
    }
    Ok(out)
}

/// A container's `volumeMounts`; a relative `mountPath` is taken from the
/// container's root, as kubelet does.
pub fn mounts(c: &Container) -> Vec<VolumeMount> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| VolumeMount {
            name: m.name.clone(),
            mount_path: if m.mount_path.starts_with('/') {
                PathBuf::from(&m.mount_path)
            } else {
                PathBuf::from(format!("/{}", m.mount_path))
            },
            read_only: m.read_only.unwrap_or(false),
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Volume as K8sVolume};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::scratch::file_size;

    fn empty_dir(name: &str, medium: Option<&str>, limit: Option<&str>) -> K8sVolume {
        K8sVolume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: medium.map(Into::into),
                size_limit: limit.map(|l| Quantity(l.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn disk_volumes_get_numbered_scratch_disks() {
        let spec = PodSpec {
            volumes: Some(vec![
                empty_dir("cache", None, None),
                empty_dir("shm", Some("Memory"), Some("64Mi")),
                empty_dir("data", Some(""), Some("1Gi")),
            ]),
            ..Default::default()
        };
        let got = volumes(&spec).unwrap();
        assert_eq!(
            got.volumes,
            [
                Volume {
                    name: "cache".into(),
                    medium: EmptyDirMedium::BlockSerial {
                        serial: "podvm-ed0".into()
                    },
                    size_limit: None,
                },
                Volume {
                    name: "shm".into(),
                    medium: EmptyDirMedium::Memory,
                    size_limit: Some(64 << 20),
                },
                Volume {
                    name: "data".into(),
                    medium: EmptyDirMedium::BlockSerial {
                        serial: "podvm-ed1".into()
                    },
                    size_limit: Some(1 << 30),
                },
            ]
        );
        assert_eq!(
            got.scratch,
            [
                ScratchDisk {
                    serial: "podvm-ed0".into(),
                    size_bytes: file_size(None)
                },
                ScratchDisk {
                    serial: "podvm-ed1".into(),
                    size_bytes: 2 << 30
                },
            ]
        );
    }

    #[test]
    fn mounts_are_absolute() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "a",
            "volumeMounts": [
                {"name": "cache", "mountPath": "/cache", "readOnly": true, "subPath": "a/b"},
                {"name": "data", "mountPath": "data", "subPath": ""},
            ]
        }))
        .unwrap();
        assert_eq!(
            mounts(&c),
            [
                VolumeMount {
                    name: "cache".into(),
                    mount_path: "/cache".into(),
                    read_only: true,
                    sub_path: Some("a/b".into()),
                },
                VolumeMount {
                    name: "data".into(),
                    mount_path: "/data".into(),
                    read_only: false,
                    sub_path: None,
                },
            ]
        );
    }
}
