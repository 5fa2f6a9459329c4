//! A container's `volumeMounts` as the mounts kubelet hands the runtime
//! (`makeMounts`): each names a volume of the pod, optionally a `subPath`
//! in it (bound first at `volume-subpaths/<volume>/<container>/<index>`,
//! see [`super::subpath`]), and becomes a read-write or read-only bind.

use std::path::{Component, Path, PathBuf};

use podvm_proto::ContainerSpec;

use super::subpath::{self, InvalidSubPath, SubPathError};
use super::VolumeRefs;

/// One mount as kubelet passes it to the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    /// Absolute path in the container.
    pub container_path: PathBuf,
    /// What is bound there, in the agent's mount namespace.
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// Why a container's volume mounts cannot be made: kubelet's
/// `CreateContainerConfigError` messages. Details of a failed `subPath`
/// stay in the source, as kubelet keeps them out of the pod's status.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cannot find volume {volume:?} to mount into container {container:?}")]
    UnknownVolume { volume: String, container: String },
    #[error(transparent)]
    InvalidSubPath(#[from] InvalidSubPath),
    #[error(
        "failed to create subPath directory for volumeMount {mount:?} of container {container:?}"
    )]
    CreateSubPath {
        mount: String,
        container: String,
        #[source]
        source: SubPathError,
    },
    #[error("failed to prepare subPath for volumeMount {mount:?} of container {container:?}")]
    PrepareSubPath {
        mount: String,
        container: String,
        #[source]
        source: SubPathError,
    },
}

/// `path` made absolute as kubelet does (`/` prepended).
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new("/").join(path)
    }
}

/// An absolute path cleaned lexically, as Go's `filepath.Clean` (how
/// containerd compares mount destinations): no `.`, no `..` (none above
/// the root), no repeated or trailing `/`.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// containerd's sort key for mounts (`orderedMounts`): how many parts the
/// cleaned destination splits into at `/`, so that a mount comes after the
/// ones of its parents.
pub fn depth(path: &Path) -> usize {
    let names = clean(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    names.max(1) + 1
}

/// The bind mounts of `spec`'s volume mounts, in order; `subPath`s are
/// resolved (created when missing) and bound in place now.
pub fn volume_mounts(
    spec: &ContainerSpec,
    refs: &VolumeRefs,
) -> Result<Vec<HostMount>, MountError> {
    let container = &spec.name;
    let mut mounts = Vec::with_capacity(spec.volume_mounts.len());
    for (index, mount) in spec.volume_mounts.iter().enumerate() {
        let volume_dir = refs
            .dirs
            .get(&mount.name)
            .ok_or_else(|| MountError::UnknownVolume {
                volume: mount.name.clone(),
                container: container.clone(),
            })?;
        let host_path = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            None => volume_dir.clone(),
            Some(sub_path) => {
                let parts = subpath::components(sub_path)?;
                let failed = |source: SubPathError| match source {
                    SubPathError::Create { .. } => MountError::CreateSubPath {
                        mount: mount.name.clone(),
                        container: container.clone(),
                        source,
                    },
                    source => MountError::PrepareSubPath {
                        mount: mount.name.clone(),
                        container: container.clone(),
                        source,
                    },
                };
                let fd = subpath::resolve(volume_dir, &parts).map_err(failed)?;
                let target = refs
                    .subpaths
                    .join(&mount.name)
                    .join(container)
                    .join(index.to_string());
                subpath::bind_at(&fd, &target).map_err(failed)?;
                target
            }
        };
        mounts.push(HostMount {
            container_path: absolute(&mount.mount_path),
            host_path,
            read_only: mount.read_only,
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use podvm_proto::VolumeMount;

    fn container(mounts: Vec<VolumeMount>) -> ContainerSpec {
        let mut spec: ContainerSpec = serde_json::from_value(serde_json::json!({
            "name": "app", "image": "i", "image_id": "sha256:00",
            "image_config": {}, "rootfs": {"directory": {"path": "/"}}
        }))
        .unwrap();
        spec.volume_mounts = mounts;
        spec
    }

    fn mount(name: &str, path: &str, read_only: bool, sub_path: Option<&str>) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            read_only,
            sub_path: sub_path.map(str::to_string),
        }
    }

    fn refs() -> VolumeRefs {
        VolumeRefs {
            dirs: [("data".to_string(), PathBuf::from("/run/v/data"))].into(),
            subpaths: "/run/v/subpaths".into(),
            containers: "/run/c".into(),
        }
    }

    #[test]
    fn whole_volumes_are_bound_as_declared() {
        let spec = container(vec![
            mount("data", "/data", false, None),
            mount("data", "ro", true, Some("")),
        ]);
        assert_eq!(
            volume_mounts(&spec, &refs()).unwrap(),
            [
                HostMount {
                    container_path: "/data".into(),
                    host_path: "/run/v/data".into(),
                    read_only: false
                },
                HostMount {
                    container_path: "/ro".into(),
                    host_path: "/run/v/data".into(),
                    read_only: true
                },
            ]
        );
    }

    #[test]
    fn destinations_compare_like_containerds() {
        assert_eq!(clean(Path::new("/a/./b//c/")), Path::new("/a/b/c"));
        assert_eq!(clean(Path::new("/a/../../b")), Path::new("/b"));
        assert_eq!(clean(Path::new("/")), Path::new("/"));
        assert_eq!(absolute(Path::new("data")), Path::new("/data"));
        assert_eq!(depth(Path::new("/")), 2);
        assert_eq!(depth(Path::new("/data")), 2);
        assert_eq!(depth(Path::new("/data/sub/")), 3);
    }

    #[test]
    fn kubelets_errors() {
        let unknown = container(vec![mount("nope", "/x", false, None)]);
        assert_eq!(
            volume_mounts(&unknown, &refs()).unwrap_err().to_string(),
            "cannot find volume \"nope\" to mount into container \"app\""
        );
        let back = container(vec![mount("data", "/x", false, Some("a/../../b"))]);
        assert_eq!(
            volume_mounts(&back, &refs()).unwrap_err().to_string(),
            "unable to provision SubPath `a/../../b`: must not contain '..'"
        );
        let missing_volume_dir = container(vec![mount("data", "/x", false, Some("sub"))]);
        assert_eq!(
            volume_mounts(&missing_volume_dir, &refs())
                .unwrap_err()
                .to_string(),
            "failed to prepare subPath for volumeMount \"data\" of container \"app\""
        );
    }
}
