//! Turns a validated Pod and the local image store into what the VM needs:
//! the agent's [`SandboxSpec`], the read-only image disks, and the scratch
//! disks behind disk `emptyDir` volumes.

mod probe;
mod volume;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use podvm_image::{ImageRecord, ImageStore};
use podvm_proto::lifecycle::DEFAULT_TERMINATION_MESSAGE_PATH;
use podvm_proto::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
    TerminationMessagePolicy,
};

use crate::hypervisor::DiskConfig;
use crate::manifest::field_path::FieldPath;
use crate::scratch::ScratchDisk;

/// Filesystem type of the image disks the store builds.
const IMAGE_FSTYPE: &str = "erofs";
/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: u64 = 30;

/// The sandbox spec plus the disks it refers to.
pub struct Sandbox {
    pub spec: SandboxSpec,
    /// Read-only image disks, one per distinct image.
    pub disks: Vec<DiskConfig>,
    /// Scratch disks of disk `emptyDir` volumes, made when the VM boots.
    pub scratch: Vec<ScratchDisk>,
}

/// Which list a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    App,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Init => "initContainers",
            Kind::App => "containers",
        }
    }
}

/// The image disks of a pod: one per distinct image digest, in first-use
/// order.
#[derive(Default)]
struct ImageDisks {
    disks: Vec<DiskConfig>,
    serial_of: BTreeMap<String, String>,
}

impl ImageDisks {
    /// The serial of `image`'s disk, building the disk on first use.
    fn serial(
        &mut self,
        store: &ImageStore,
        image: &ImageRecord,
        image_ref: &str,
    ) -> Result<String> {
        if let Some(s) = self.serial_of.get(&image.id) {
            return Ok(s.clone());
        }
        let path: PathBuf = store
            .disk_image(image)
            .with_context(|| format!("cannot build the disk image of {image_ref}"))?;
        let serial = format!("podvm-img{}", self.disks.len());
        self.disks.push(DiskConfig {
            path,
            read_only: true,
            serial: serial.clone(),
        });
        self.serial_of.insert(image.id.clone(), serial.clone());
        Ok(serial)
    }
}

/// Resolves every container's image and builds the sandbox. Fails, naming
/// the field, when an image is not in the store.
pub fn build(pod: &Pod, store: &ImageStore) -> Result<Sandbox> {
    let spec = pod.spec.as_ref().context("spec: Required value")?;
    let (namespace, name) = crate::manifest::pod_key(pod)?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();

    let mut images = ImageDisks::default();
    let mut convert = |kind: Kind, list: &[Container]| -> Result<Vec<ContainerSpec>> {
        list.iter()
            .enumerate()
            .map(|(i, c)| {
                let path = format!("spec.{}[{i}]", kind.field());
                let image_ref = c.image.as_deref().unwrap_or_default();
                let image = store.resolve(image_ref).map_err(|e| {
                    anyhow!(
                        "{path}.image: image {image_ref:?} is not in the local store ({e}); load it with `podvm image load -i FILE`"
                    )
                })?;
                let serial = images.serial(store, &image, image_ref)?;
                container_spec(pod, spec, c, kind, &path, &image, serial)
            })
            .collect()
    };
    let init_containers = convert(
        Kind::Init,
        spec.init_containers.as_deref().unwrap_or_default(),
    )?;
    let containers = convert(Kind::App, &spec.containers)?;
    let volumes = volume::volumes(spec)?;

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
            init_containers,
            containers,
            active_deadline_seconds: spec
                .active_deadline_seconds
                .and_then(|d| u64::try_from(d).ok()),
            volumes: volumes.volumes,
        },
        disks: images.disks,
        scratch: volumes.scratch,
    })
}

fn container_spec(
    pod: &Pod,
    spec: &PodSpec,
    c: &Container,
    kind: Kind,
    path: &str,
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
                Some(fr) => FieldPath::parse(&fr.field_path)
                    .map(|p| p.resolve(pod, &node_name()))
                    .unwrap_or_default(),
                None => e.value.clone().unwrap_or_default(),
            },
        })
        .collect();
    let probe = |p: &Option<k8s_openapi::api::core::v1::Probe>, field: &str| {
        p.as_ref()
            .map(|p| probe::probe(p, c, &format!("{path}.{field}")))
            .transpose()
    };
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
            stop_signal: image.config.stop_signal.clone().filter(|s| !s.is_empty()),
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
        restart_policy: match (kind, c.restart_policy.as_deref()) {
            (Kind::Init, Some("Always")) => Some(RestartPolicy::Always),
            _ => None,
        },
        startup_probe: probe(&c.startup_probe, "startupProbe")?,
        liveness_probe: probe(&c.liveness_probe, "livenessProbe")?,
        readiness_probe: probe(&c.readiness_probe, "readinessProbe")?,
        lifecycle: probe::lifecycle(c.lifecycle.as_ref(), c, &format!("{path}.lifecycle"))?,
        termination_message_path: c
            .termination_message_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.into()),
        termination_message_policy: match c.termination_message_policy.as_deref() {
            Some("FallbackToLogsOnError") => TerminationMessagePolicy::FallbackToLogsOnError,
            _ => TerminationMessagePolicy::File,
        },
        volume_mounts: volume::mounts(c),
    })
}

/// The value of a supported `fieldRef.fieldPath` (validated earlier).
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

    fn image(stop_signal: Option<&str>) -> ImageRecord {
        ImageRecord {
            names: vec!["docker.io/library/app:1".into()],
            id: "sha256:abc".into(),
            manifest_digest: "sha256:def".into(),
            config: podvm_image::ImageConfig {
                stop_signal: stop_signal.map(Into::into),
                ..Default::default()
            },
            size: 1,
            created: None,
            layers: vec![],
            warnings: vec![],
        }
    }

    fn convert(text: &str, kind: Kind, image: &ImageRecord) -> ContainerSpec {
        let pod = crate::manifest::parse(text, "test").unwrap();
        let spec = pod.spec.as_ref().unwrap();
        let c = match kind {
            Kind::Init => &spec.init_containers.as_ref().unwrap()[0],
            Kind::App => &spec.containers[0],
        };
        container_spec(&pod, spec, c, kind, "spec.x[0]", image, "podvm-img0".into()).unwrap()
    }

    const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes: [{name: scratch, emptyDir: {}}]
  initContainers:
  - name: proxy
    image: app:1
    restartPolicy: Always
    ports: [{name: admin, containerPort: 9901}]
    readinessProbe: {httpGet: {port: admin}}
  containers:
  - name: app
    image: app:1
    terminationMessagePolicy: FallbackToLogsOnError
    volumeMounts: [{name: scratch, mountPath: /scratch}]
    lifecycle: {preStop: {sleep: {seconds: 3}}}
"#;

    #[test]
    fn sidecars_probes_hooks_and_termination_messages_are_carried() {
        let sidecar = convert(POD, Kind::Init, &image(Some("SIGQUIT")));
        assert!(sidecar.is_sidecar());
        assert_eq!(sidecar.image_config.stop_signal.as_deref(), Some("SIGQUIT"));
        let readiness = sidecar.readiness_probe.expect("a readiness probe");
        let podvm_proto::ProbeAction::HttpGet(get) = readiness.action else {
            panic!("an httpGet probe")
        };
        assert_eq!((get.port, get.path.as_str()), (9901, "/"));
        assert_eq!(readiness.period_seconds, 10);
        assert_eq!(sidecar.termination_message_path, "/dev/termination-log");

        let app = convert(POD, Kind::App, &image(Some("")));
        assert_eq!(app.restart_policy, None);
        assert_eq!(app.image_config.stop_signal, None);
        assert_eq!(
            app.termination_message_policy,
            TerminationMessagePolicy::FallbackToLogsOnError
        );
        assert_eq!(
            app.lifecycle.pre_stop,
            Some(podvm_proto::HookAction::Sleep { seconds: 3 })
        );
        assert_eq!(app.volume_mounts.len(), 1);
        assert_eq!(app.liveness_probe, None);
    }

    #[test]
    fn an_init_container_without_always_is_not_a_sidecar() {
        let text = POD
            .replace("    restartPolicy: Always\n", "")
            .replace("    readinessProbe: {httpGet: {port: admin}}\n", "");
        assert!(!convert(&text, Kind::Init, &image(None)).is_sidecar());
    }

    #[test]
    fn hostnames_follow_kubelet() {
        assert_eq!(hostname_from("web"), "web");
        let long = format!("{}-{}", "a".repeat(62), "b");
        assert_eq!(hostname_from(&long), "a".repeat(62));
    }
}
