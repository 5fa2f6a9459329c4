//! Binding a container's spec to its pod: the sandbox holder's IPC, UTS
//! and network namespaces are joined by path, PID and mount namespaces are
//! new, the root is the bundle's `rootfs`, the cgroup is the agent's, and
//! bind mounts of `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and
//! `/dev/shm` come from the sandbox whatever source a client named (as
//! kata-agent does: the client's paths are its own machine's). The pod's
//! volumes, for the containers whose spec the agent builds, come along.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::volume::VolumeRefs;

/// What a container takes from its pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRefs {
    /// The sandbox holder, whose namespaces are joined.
    pub holder_pid: i32,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    /// The pod-wide tmpfs for `/dev/shm`.
    pub shm: PathBuf,
    /// The pod's volumes and where per-container mount sources are made.
    pub volumes: VolumeRefs,
}

/// The bundle-relative root every container runs on (the bundle's
/// `rootfs`, the overlay's mount point).
pub const ROOTFS: &str = "rootfs";

impl SandboxRefs {
    /// The sandbox file bound at `destination`, for those it provides.
    pub fn file_for(&self, destination: &Path) -> Option<&Path> {
        let path = match destination.to_str()? {
            "/etc/hosts" => &self.hosts,
            "/etc/hostname" => &self.hostname,
            "/etc/resolv.conf" => &self.resolv_conf,
            "/dev/shm" => &self.shm,
            _ => return None,
        };
        Some(path)
    }

    /// The namespaces of a container in this sandbox.
    pub fn namespaces(&self) -> Vec<LinuxNamespace> {
        let ns = |typ, path: Option<PathBuf>| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(typ).set_path(path);
            ns
        };
        let joined = |name: &str| {
            Some(PathBuf::from(format!(
                "/proc/{}/ns/{name}",
                self.holder_pid
            )))
        };
        vec![
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Ipc, joined("ipc")),
            ns(LinuxNamespaceType::Uts, joined("uts")),
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Network, joined("net")),
        ]
    }
}

/// Binds `spec` (already checked) to the sandbox: namespaces, root,
/// cgroup and the sandbox's files. A cgroup namespace asked for is kept.
pub fn bind(spec: &mut Spec, refs: &SandboxRefs, cgroups_path: Option<PathBuf>) {
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(PathBuf::from(ROOTFS));
    let readonly = root.readonly().unwrap_or(false);
    root.set_readonly(Some(readonly));
    spec.set_root(Some(root));

    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            let is_bind = m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
            if !is_bind {
                continue;
            }
            if let Some(file) = refs.file_for(m.destination()) {
                m.set_source(Some(file.to_path_buf()));
            }
        }
    }

    let mut linux = spec.linux().clone().unwrap_or_default();
    let wants_cgroupns = linux
        .namespaces()
        .as_ref()
        .is_some_and(|list| list.iter().any(|ns| ns.typ() == LinuxNamespaceType::Cgroup));
    let mut namespaces = refs.namespaces();
    if wants_cgroupns {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(LinuxNamespaceType::Cgroup);
        namespaces.push(ns);
    }
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(cgroups_path);
    spec.set_linux(Some(linux));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::parse;

    fn refs() -> SandboxRefs {
        SandboxRefs {
            holder_pid: 42,
            hosts: "/run/sb/hosts".into(),
            hostname: "/run/sb/hostname".into(),
            resolv_conf: "/run/sb/resolv.conf".into(),
            shm: "/run/sb/shm".into(),
            volumes: VolumeRefs::default(),
        }
    }

    #[test]
    fn a_client_spec_is_bound_to_the_sandbox() {
        let mut spec = parse(
            br#"{"ociVersion":"1.1.0","root":{"path":"/host/rootfs","readonly":true},
            "mounts":[{"destination":"/etc/hosts","type":"bind","source":"/host/hosts","options":["rbind","ro"]},
                      {"destination":"/dev/shm","type":"tmpfs","source":"shm"},
                      {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind"]}],
            "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/x"},
                                   {"type":"cgroup"}],"cgroupsPath":"/kubepods/x"}}"#,
        )
        .unwrap();
        bind(&mut spec, &refs(), Some("/podvm-1/cri_x".into()));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(
            (root.path().as_path(), root.readonly()),
            (Path::new("rootfs"), Some(true))
        );
        let sources: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.source().clone().unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                PathBuf::from("/run/sb/hosts"),
                "shm".into(),
                "/srv/data".into()
            ]
        );
        let linux = spec.linux().as_ref().unwrap();
        let namespaces: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect();
        assert_eq!(
            namespaces,
            [
                (LinuxNamespaceType::Pid, None),
                (LinuxNamespaceType::Ipc, Some("/proc/42/ns/ipc".into())),
                (LinuxNamespaceType::Uts, Some("/proc/42/ns/uts".into())),
                (LinuxNamespaceType::Mount, None),
                (LinuxNamespaceType::Network, Some("/proc/42/ns/net".into())),
                (LinuxNamespaceType::Cgroup, None),
            ]
        );
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/podvm-1/cri_x"))
        );
    }
}
