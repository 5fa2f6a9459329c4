//! The container's process as Kubernetes defines it: argv from
//! command/args/ENTRYPOINT/CMD with `$(VAR)` expansion, the environment, the
//! working directory and the user.

use std::collections::HashMap;
use std::path::Path;

use podvm_proto::ContainerSpec;

use super::config::ProcessConfig;
use super::expand::expand;
use super::user::{resolve_in, UserError, UserRequest};

/// PATH used when neither the image nor the pod sets one (containerd's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a container's process could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error(transparent)]
    User(#[from] UserError),
}

/// Resolves the whole process; `image_root` is the image's root filesystem
/// (for `/etc/passwd` and `/etc/group`).
pub fn resolve_process(
    spec: &ContainerSpec,
    hostname: &str,
    image_root: &Path,
) -> Result<ProcessConfig, SpecError> {
    let identity = resolve_in(
        image_root,
        &UserRequest {
            run_as_user: spec.run_as_user,
            run_as_group: spec.run_as_group,
            image_user: spec.image_config.user.as_deref(),
            supplemental_groups: &spec.supplemental_groups,
        },
    )?;
    Ok(ProcessConfig {
        argv: argv(spec)?,
        env: environment(spec, hostname),
        cwd: working_dir(spec),
        uid: identity.uid,
        gid: identity.gid,
        groups: identity.groups,
    })
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
pub fn argv(spec: &ContainerSpec) -> Result<Vec<String>, SpecError> {
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
        return Err(SpecError::NoCommand);
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
    use podvm_proto::{EnvVar, ImageConfig, RootfsSource};

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
        assert!(matches!(argv(&empty), Err(SpecError::NoCommand)));
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
}
