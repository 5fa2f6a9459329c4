//! A Kubernetes container as the OCI runtime spec podvm runs, the way
//! containerd's CRI plugin builds it: the process (argv from
//! command/args/ENTRYPOINT/CMD with `$(VAR)` expansion, the environment,
//! the working directory, the user from the image's `/etc/passwd`,
//! containerd's capabilities and open-files limit, kubelet's BestEffort
//! OOM score), the pod's hostname, the mounts (kubelet's: the volume
//! mounts, `/etc/hosts` and the termination log; containerd's: its
//! standard mounts and the sandbox's other files, merged and ordered as
//! containerd does), namespaces shared with the sandbox, masked and
//! read-only paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxResources, Mount, Process, Root, Spec, User};
use podvm_proto::ContainerSpec;

use super::expand::expand;
use super::user::{resolve_in, UserError, UserRequest};
use crate::console::say;
use crate::oci::defaults::{self, BEST_EFFORT_OOM_SCORE_ADJ, MASKED_PATHS, READONLY_PATHS};
use crate::oci::sandbox::{self, SandboxRefs, ROOTFS};
use crate::volume::container::{absolute, clean, depth, volume_mounts, HostMount, MountError};
use crate::volume::termination::create_termination_log;

/// PATH used when neither the image nor the pod sets one (containerd's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a container's spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no command specified")]
    NoCommand,
    #[error(transparent)]
    User(#[from] UserError),
    #[error("building the OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    /// A volume mount that cannot be made (kubelet's
    /// `CreateContainerConfigError`).
    #[error(transparent)]
    Mount(#[from] MountError),
}

/// The container's process; `image_root` is the image's root filesystem
/// (for `/etc/passwd` and `/etc/group`).
pub fn process(
    spec: &ContainerSpec,
    hostname: &str,
    image_root: &Path,
) -> Result<Process, BuildError> {
    let identity = resolve_in(
        image_root,
        &UserRequest {
            run_as_user: spec.run_as_user,
            run_as_group: spec.run_as_group,
            image_user: spec.image_config.user.as_deref(),
            supplemental_groups: &spec.supplemental_groups,
        },
    )?;
    let mut user = User::default();
    user.set_uid(identity.uid)
        .set_gid(identity.gid)
        .set_additional_gids(Some(identity.groups));
    let mut process = Process::default();
    process
        .set_terminal(Some(false))
        .set_user(user)
        .set_args(Some(argv(spec)?))
        .set_env(Some(environment(spec, hostname)))
        .set_cwd(PathBuf::from(working_dir(spec)))
        .set_capabilities(Some(defaults::capabilities()))
        .set_rlimits(Some(defaults::rlimits()?))
        .set_no_new_privileges(Some(false))
        .set_oom_score_adj(Some(BEST_EFFORT_OOM_SCORE_ADJ));
    Ok(process)
}

/// The whole spec of `spec` in the pod whose hostname is `hostname` and
/// whose sandbox is `refs`; `linux.cgroupsPath` is set when the container
/// gets its cgroup. Making the mounts prepares this run's sources: the
/// `subPath` binds and a fresh termination-message file.
pub fn build(
    spec: &ContainerSpec,
    hostname: &str,
    refs: &SandboxRefs,
    image_root: &Path,
) -> Result<Spec, BuildError> {
    let process = process(spec, hostname, image_root)?;
    let mounts = mounts(spec, refs)?;
    let mut root = Root::default();
    root.set_path(PathBuf::from(ROOTFS))
        .set_readonly(Some(false));
    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(refs.namespaces()))
        // Empty until pod resources are supported.
        .set_resources(Some(LinuxResources::default()))
        .set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()))
        .set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    let mut out = Spec::default();
    out.set_version(defaults::OCI_VERSION.to_string())
        .set_process(Some(process))
        .set_root(Some(root))
        .set_hostname(Some(hostname.to_string()))
        .set_mounts(None)
        .set_annotations(None)
        .set_linux(Some(linux));
    sandbox::bind(&mut out, refs, None);
    // After the binding, which would point a volume mounted at a sandbox
    // file's place back to the sandbox's file.
    out.set_mounts(Some(mounts));
    Ok(out)
}

fn host_mount(container_path: &str, host_path: &Path) -> HostMount {
    HostMount {
        container_path: PathBuf::from(container_path),
        host_path: host_path.to_path_buf(),
        read_only: false,
    }
}

/// kubelet's mounts for the container (`makeMounts`, then the runtime
/// manager's termination log), then containerd's `WithMounts`: the
/// sandbox's other files where the container mounts nothing, all ordered
/// by depth, after containerd's standard mounts (less those a supplied
/// mount replaces, and everything under `/dev` if `/dev` is supplied).
fn mounts(spec: &ContainerSpec, refs: &SandboxRefs) -> Result<Vec<Mount>, BuildError> {
    let mut supplied = volume_mounts(spec, &refs.volumes)?;
    let covers = |list: &[HostMount], destination: &str| {
        list.iter()
            .any(|m| clean(&m.container_path) == Path::new(destination))
    };
    if !covers(&supplied, "/etc/hosts") {
        supplied.push(host_mount("/etc/hosts", &refs.hosts));
    }
    if !spec.termination_message_path.is_empty() {
        // kubelet goes on without the file when it cannot make it.
        match create_termination_log(&refs.volumes.containers, &spec.name) {
            Ok(file) => supplied.push(HostMount {
                container_path: absolute(Path::new(&spec.termination_message_path)),
                host_path: file,
                read_only: false,
            }),
            Err(e) => say!(
                "error on creating the termination-log file of container {}: {e}",
                spec.name
            ),
        }
    }
    let mut all = supplied.clone();
    for destination in ["/etc/hostname", "/etc/resolv.conf", "/dev/shm"] {
        if !covers(&supplied, destination) {
            if let Some(file) = refs.file_for(Path::new(destination)) {
                all.push(host_mount(destination, file));
            }
        }
    }
    all.sort_by_key(|m| depth(&m.container_path));
    let taken: Vec<PathBuf> = all.iter().map(|m| clean(&m.container_path)).collect();
    let dev_supplied = taken.iter().any(|d| d == Path::new("/dev"));
    let mut mounts: Vec<Mount> = defaults::standard_mounts()
        .into_iter()
        .filter(|m| {
            let destination = clean(m.destination());
            let replaced = taken.contains(&destination);
            let under_dev = dev_supplied && destination.starts_with("/dev");
            !replaced && !under_dev
        })
        .collect();
    for m in all {
        // Kubernetes paths are strings: the conversion is exact.
        let destination = m.container_path.to_string_lossy();
        mounts.push(if m.read_only {
            defaults::mount(
                &destination,
                "bind",
                &m.host_path,
                &["rbind", "rprivate", "ro"],
            )
        } else {
            defaults::bind(&destination, &m.host_path)
        });
    }
    Ok(mounts)
}

/// The pod-declared environment with `$(VAR)` references to earlier entries
/// expanded, in order (a later entry with the same name wins).
fn pod_env(spec: &ContainerSpec) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = HashMap::new();
    for var in &spec.env {
        let value = expand(&var.value, |name| vars.get(name).map(String::as_str));
        vars.insert(var.name.clone(), value);
    }
    vars
}

/// Kubernetes' rules: no command and no args → ENTRYPOINT+CMD; command →
/// command (+args); args only → ENTRYPOINT+args. `$(VAR)` in command and
/// args is expanded from the pod-declared environment.
pub fn argv(spec: &ContainerSpec) -> Result<Vec<String>, BuildError> {
    let vars = pod_env(spec);
    let lookup = |name: &str| vars.get(name).map(String::as_str);
    let expanded =
        |list: &[String]| -> Vec<String> { list.iter().map(|a| expand(a, lookup)).collect() };
    let image = &spec.image_config;
    let argv = match (spec.command.is_empty(), spec.args.is_empty()) {
        (true, true) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
        (false, true) => expanded(&spec.command),
        (true, false) => {
            let mut v = image.entrypoint.clone();
            v.extend(expanded(&spec.args));
            v
        }
        (false, false) => {
            let mut v = expanded(&spec.command);
            v.extend(expanded(&spec.args));
            v
        }
    };
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(BuildError::NoCommand);
    }
    Ok(argv)
}

/// containerd's order: default PATH, `HOSTNAME`, the image's env, then the
/// pod's env; a later entry replaces an earlier one of the same name in place.
pub fn environment(spec: &ContainerSpec, hostname: &str) -> Vec<String> {
    let vars = pod_env(spec);
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    let mut set = |name: &str, value: &str| match env.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((name.to_string(), value.to_string())),
    };
    for entry in &spec.image_config.env {
        match entry.split_once('=') {
            Some((name, value)) => set(name, value),
            None => set(entry, ""),
        }
    }
    let mut seen = Vec::new();
    for var in &spec.env {
        if !seen.contains(&var.name) {
            seen.push(var.name.clone());
            set(&var.name, vars.get(&var.name).map_or("", String::as_str));
        }
    }
    env.into_iter().map(|(n, v)| format!("{n}={v}")).collect()
}

/// `workingDir`, else the image's WorkingDir, else `/`.
pub fn working_dir(spec: &ContainerSpec) -> String {
    let dir = spec
        .working_dir
        .as_deref()
        .filter(|d| !d.is_empty())
        .or(spec
            .image_config
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty()))
        .unwrap_or("/");
    if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("/{dir}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::VolumeRefs;
    use podvm_proto::{EnvVar, ImageConfig, RootfsSource, VolumeMount};

    fn spec(command: &[&str], args: &[&str]) -> ContainerSpec {
        ContainerSpec {
            name: "c".into(),
            image: "img".into(),
            image_id: "sha256:00".into(),
            image_config: ImageConfig {
                entrypoint: vec!["/ep".into(), "e1".into()],
                cmd: vec!["c1".into(), "c2".into()],
                env: vec![
                    "PATH=/img/bin".into(),
                    "IMG=1".into(),
                    "SHARED=image".into(),
                ],
                working_dir: Some("/imgdir".into()),
                user: None,
                stop_signal: None,
            },
            rootfs: RootfsSource::Directory { path: "/".into() },
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![
                EnvVar {
                    name: "SHARED".into(),
                    value: "pod".into(),
                },
                EnvVar {
                    name: "GREETING".into(),
                    value: "hi $(SHARED) $(IMG) $$(SHARED)".into(),
                },
            ],
            working_dir: None,
            run_as_user: None,
            run_as_group: None,
            supplemental_groups: vec![],
            restart_policy: None,
            startup_probe: None,
            liveness_probe: None,
            readiness_probe: None,
            lifecycle: Default::default(),
            termination_message_path: "/dev/termination-log".into(),
            termination_message_policy: Default::default(),
            volume_mounts: vec![],
        }
    }

    #[test]
    fn command_and_args_rules() {
        assert_eq!(argv(&spec(&[], &[])).unwrap(), ["/ep", "e1", "c1", "c2"]);
        assert_eq!(argv(&spec(&["cmd", "x"], &[])).unwrap(), ["cmd", "x"]);
        assert_eq!(argv(&spec(&[], &["a1"])).unwrap(), ["/ep", "e1", "a1"]);
        assert_eq!(argv(&spec(&["cmd"], &["a1"])).unwrap(), ["cmd", "a1"]);
        assert_eq!(
            argv(&spec(
                &["echo", "$(SHARED)"],
                &["$(GREETING)", "$$(SHARED)", "$(NOPE)"]
            ))
            .unwrap(),
            [
                "echo",
                "pod",
                "hi pod $(IMG) $(SHARED)",
                "$(SHARED)",
                "$(NOPE)"
            ]
        );
        let mut empty = spec(&[], &[]);
        empty.image_config.entrypoint.clear();
        empty.image_config.cmd.clear();
        assert!(matches!(argv(&empty), Err(BuildError::NoCommand)));
    }

    #[test]
    fn environment_order_and_overrides() {
        let env = environment(&spec(&[], &[]), "pod-host");
        assert_eq!(
            env,
            [
                "PATH=/img/bin",
                "HOSTNAME=pod-host",
                "IMG=1",
                "SHARED=pod",
                "GREETING=hi pod $(IMG) $(SHARED)",
            ]
        );
        let mut no_path = spec(&[], &[]);
        no_path.image_config.env.clear();
        assert_eq!(
            environment(&no_path, "h")[0],
            format!("PATH={DEFAULT_PATH}")
        );
    }

    #[test]
    fn working_dir_precedence() {
        let mut s = spec(&[], &[]);
        assert_eq!(working_dir(&s), "/imgdir");
        s.working_dir = Some("/work".into());
        assert_eq!(working_dir(&s), "/work");
        s.working_dir = None;
        s.image_config.working_dir = None;
        assert_eq!(working_dir(&s), "/");
    }

    fn image_root() -> tempfile::TempDir {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir(image.path().join("etc")).unwrap();
        std::fs::write(
            image.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            image.path().join("etc/group"),
            "app:x:1000:\nextra:x:2000:app\n",
        )
        .unwrap();
        image
    }

    fn refs(containers: &Path) -> SandboxRefs {
        SandboxRefs {
            holder_pid: 4242,
            hosts: "/run/podvm/sandbox/hosts".into(),
            hostname: "/run/podvm/sandbox/hostname".into(),
            resolv_conf: "/run/podvm/sandbox/resolv.conf".into(),
            shm: "/run/podvm/sandbox/shm".into(),
            volumes: VolumeRefs {
                dirs: [
                    (
                        "data".to_string(),
                        PathBuf::from("/run/podvm/sandbox/volumes/data"),
                    ),
                    (
                        "etc".to_string(),
                        PathBuf::from("/run/podvm/sandbox/volumes/etc"),
                    ),
                ]
                .into(),
                subpaths: "/run/podvm/sandbox/volume-subpaths".into(),
                containers: containers.to_path_buf(),
            },
        }
    }

    fn sorted(v: &serde_json::Value) -> Vec<String> {
        let mut list: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        list.sort();
        list
    }

    #[test]
    fn the_oci_spec_of_a_kubernetes_container() {
        use serde_json::json;
        let image = image_root();
        let mut c = spec(&["/bin/server"], &["--port", "80"]);
        c.image_config.user = Some("app".into());
        c.supplemental_groups = vec![3000];
        let run = tempfile::tempdir().unwrap();
        let built = build(&c, "pod-host", &refs(run.path()), image.path()).unwrap();
        crate::oci::check::check(&built).unwrap();
        let j = serde_json::to_value(&built).unwrap();

        assert_eq!(j["ociVersion"], defaults::OCI_VERSION);
        assert_eq!(j["hostname"], "pod-host");
        assert_eq!(j["root"], json!({"path": "rootfs", "readonly": false}));
        let p = &j["process"];
        assert_eq!(p["terminal"], false);
        assert_eq!(p["args"], json!(["/bin/server", "--port", "80"]));
        assert_eq!(p["cwd"], "/imgdir");
        assert_eq!(
            p["env"],
            json!([
                "PATH=/img/bin",
                "HOSTNAME=pod-host",
                "IMG=1",
                "SHARED=pod",
                "GREETING=hi pod $(IMG) $(SHARED)"
            ])
        );
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 2000, 3000]})
        );
        assert_eq!(p["noNewPrivileges"], false);
        assert_eq!(p["oomScoreAdj"], 1000);
        assert_eq!(
            p["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])
        );
        let containerd_caps = [
            "CAP_AUDIT_WRITE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_MKNOD",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_CHROOT",
        ];
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(sorted(&p["capabilities"][set]), containerd_caps, "{set}");
        }
        assert!(p["capabilities"].get("inheritable").is_none());
        assert!(p["capabilities"].get("ambient").is_none());

        let mounts: Vec<(String, String, String, String)> = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["destination"].as_str().unwrap().into(),
                    m["type"].as_str().unwrap().into(),
                    m["source"].as_str().unwrap().into(),
                    sorted(&m["options"]).join(","),
                )
            })
            .collect();
        let m = |d: &str, t: &str, s: &str, o: &str| (d.into(), t.into(), s.into(), o.into());
        assert_eq!(
            mounts,
            [
                m("/proc", "proc", "proc", "nodev,noexec,nosuid"),
                m(
                    "/dev",
                    "tmpfs",
                    "tmpfs",
                    "mode=755,nosuid,size=65536k,strictatime"
                ),
                m(
                    "/dev/pts",
                    "devpts",
                    "devpts",
                    "gid=5,mode=0620,newinstance,noexec,nosuid,ptmxmode=0666"
                ),
                m("/dev/mqueue", "mqueue", "mqueue", "nodev,noexec,nosuid"),
                m("/sys", "sysfs", "sysfs", "nodev,noexec,nosuid,ro"),
                m(
                    "/sys/fs/cgroup",
                    "cgroup",
                    "cgroup",
                    "nodev,noexec,nosuid,relatime,ro"
                ),
                m(
                    "/etc/hosts",
                    "bind",
                    "/run/podvm/sandbox/hosts",
                    "rbind,rprivate,rw"
                ),
                m(
                    "/dev/termination-log",
                    "bind",
                    &run.path().join("c/termination-log").to_string_lossy(),
                    "rbind,rprivate,rw"
                ),
                m(
                    "/etc/hostname",
                    "bind",
                    "/run/podvm/sandbox/hostname",
                    "rbind,rprivate,rw"
                ),
                m(
                    "/etc/resolv.conf",
                    "bind",
                    "/run/podvm/sandbox/resolv.conf",
                    "rbind,rprivate,rw"
                ),
                m(
                    "/dev/shm",
                    "bind",
                    "/run/podvm/sandbox/shm",
                    "rbind,rprivate,rw"
                ),
            ]
        );

        let l = &j["linux"];
        assert_eq!(
            l["namespaces"],
            json!([
                {"type": "pid"},
                {"type": "ipc", "path": "/proc/4242/ns/ipc"},
                {"type": "uts", "path": "/proc/4242/ns/uts"},
                {"type": "mount"},
                {"type": "network", "path": "/proc/4242/ns/net"},
            ])
        );
        assert_eq!(l["resources"], json!({}));
        assert!(l.get("cgroupsPath").is_none());
        assert_eq!(
            l["readonlyPaths"],
            json!([
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ])
        );
        let masked = sorted(&l["maskedPaths"]);
        for path in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
        ] {
            assert!(
                masked.iter().any(|m| m == path),
                "{path} not masked: {masked:?}"
            );
        }
        assert_eq!(masked.len(), 11);
    }

    fn mounts_of(built: &Spec) -> Vec<(String, String, String)> {
        built
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m.destination().display().to_string(),
                    m.source().as_ref().unwrap().display().to_string(),
                    m.options().as_ref().unwrap().join(","),
                )
            })
            .collect()
    }

    #[test]
    fn volume_mounts_merge_like_containerd() {
        let image = image_root();
        let run = tempfile::tempdir().unwrap();
        let vm = |name: &str, path: &str, read_only: bool| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            read_only,
            sub_path: None,
        };
        let mut c = spec(&["x"], &[]);
        c.termination_message_path = "/tmp/msg".into();
        c.volume_mounts = vec![
            vm("data", "/data/deeper/still", false),
            vm("data", "/data", true),
            vm("etc", "/etc/hosts", false),
            vm("data", "/dev", false),
        ];
        let built = build(&c, "h", &refs(run.path()), image.path()).unwrap();
        crate::oci::check::check(&built).unwrap();
        let mounts = mounts_of(&built);
        let destinations: Vec<&str> = mounts.iter().map(|m| m.0.as_str()).collect();
        // The standard /dev mounts give way to the volume at /dev (the
        // sandbox's /dev/shm stays, as in containerd); kubelet's /etc/hosts
        // to the volume there; parents come before children.
        assert_eq!(
            destinations,
            [
                "/proc",
                "/sys",
                "/sys/fs/cgroup",
                "/data",
                "/dev",
                "/etc/hosts",
                "/tmp/msg",
                "/etc/hostname",
                "/etc/resolv.conf",
                "/dev/shm",
                "/data/deeper/still",
            ]
        );
        let by_dest = |d: &str| mounts.iter().find(|m| m.0 == d).unwrap().clone();
        assert_eq!(by_dest("/data").1, "/run/podvm/sandbox/volumes/data");
        assert_eq!(by_dest("/data").2, "rbind,rprivate,ro");
        assert_eq!(by_dest("/etc/hosts").1, "/run/podvm/sandbox/volumes/etc");
        assert_eq!(by_dest("/data/deeper/still").2, "rbind,rprivate,rw");
        let log = run.path().join("c/termination-log");
        assert_eq!(by_dest("/tmp/msg").1, log.display().to_string());
        assert!(log.is_file());

        c.termination_message_path = String::new();
        c.volume_mounts = vec![vm("missing", "/m", false)];
        let err = build(&c, "h", &refs(run.path()), image.path()).unwrap_err();
        assert!(matches!(err, BuildError::Mount(_)));
        assert_eq!(
            err.to_string(),
            "cannot find volume \"missing\" to mount into container \"c\""
        );
        c.volume_mounts.clear();
        let built = build(&c, "h", &refs(run.path()), image.path()).unwrap();
        assert!(!mounts_of(&built)
            .iter()
            .any(|m| m.0.contains("termination")));
    }

    #[test]
    fn user_resolution_in_the_spec() {
        let image = image_root();
        let uid_gid = |c: &ContainerSpec| {
            let p = process(c, "h", image.path()).unwrap();
            let u = p.user();
            (
                u.uid(),
                u.gid(),
                u.additional_gids().clone().unwrap_or_default(),
            )
        };
        let mut c = spec(&["x"], &[]);
        assert_eq!(uid_gid(&c), (0, 0, vec![0]));
        c.image_config.user = Some("app:extra".into());
        assert_eq!(uid_gid(&c), (1000, 2000, vec![2000]));
        c.run_as_user = Some(1234);
        c.run_as_group = Some(55);
        c.supplemental_groups = vec![7, 55];
        assert_eq!(uid_gid(&c), (1234, 55, vec![55, 7]));
        c.run_as_user = None;
        c.run_as_group = None;
        c.image_config.user = Some("nobody".into());
        assert!(matches!(
            process(&c, "h", image.path()),
            Err(BuildError::User(UserError::NoSuchUser(_)))
        ));
    }
}
