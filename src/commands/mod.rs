//! One file per verb; helpers they share live here.

pub mod apply;
pub mod bench;
pub mod delete;
pub mod describe;
pub mod events;
pub mod exec;
pub mod get;
pub mod image;
pub mod logs;
pub mod patch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use podvm_proto::AgentConn;

use crate::agent_client::AgentClient;
use crate::manager::PodManager;
use crate::state::{PodRecord, StateDir};

/// What every command gets.
pub struct Ctx {
    pub state: StateDir,
    pub image_dir: PathBuf,
    /// Pod operations (records, owners); the commands only parse and print.
    pub manager: PodManager,
}

/// The agent of a pod whose VM is running.
pub fn agent_of(record: &PodRecord) -> Result<AgentClient> {
    let name = record.pod.metadata.name.as_deref().unwrap_or_default();
    match &record.vm {
        Some(vm) if vm.is_running() => Ok(AgentClient::new(&vm.vsock_uds)),
        _ => bail!("the VM of pod \"{name}\" is not running"),
    }
}

/// A connection to the agent of a pod whose VM is running, after the
/// version exchange; the dial is retried for up to `timeout` while the VM
/// runs.
pub fn connect_agent(record: &PodRecord, timeout: Duration) -> Result<AgentConn> {
    let client = agent_of(record)?;
    let alive = || record.vm.as_ref().is_some_and(|vm| vm.is_running());
    let (conn, _version) = client
        .connect(Instant::now() + timeout, &alive)
        .context("the guest agent is not reachable")?;
    Ok(conn)
}

/// The container a command is about: the named one, or the only one.
/// With several and none named, `default_first` picks the first (kubectl
/// exec), otherwise it is an error (kubectl logs).
pub fn pick_container(pod: &Pod, wanted: Option<&str>, default_first: bool) -> Result<String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let names: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
        .collect();
    let init_names: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten().map(|c| c.name.as_str()))
        .collect();
    let init_choice = if init_names.is_empty() {
        String::new()
    } else {
        format!(" or one of the init containers: [{}]", init_names.join(" "))
    };
    match wanted {
        Some(w) if names.contains(&w) || init_names.contains(&w) => Ok(w.to_string()),
        Some(w) => bail!("container {w} is not valid for pod {name}"),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None if default_first && !names.is_empty() => {
            eprintln!(
                "Defaulted container \"{}\" out of: {}",
                names[0],
                names.join(", ")
            );
            Ok(names[0].to_string())
        }
        None => bail!(
            "a container name must be specified for pod {name}, choose one of: [{}]{init_choice}",
            names.join(" ")
        ),
    }
}

/// Loads a pod record (the error is kubectl's for a missing pod); the pod
/// gets an owner first if it needs one and its owner is gone.
pub fn load_pod(ctx: &Ctx, namespace: &str, name: &str) -> Result<PodRecord> {
    Ok(ctx.manager.get(namespace, name)?)
}

#[cfg(test)]
mod tests {
    use super::pick_container;

    fn pod(json: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn containers_are_picked_the_kubectl_way() {
        let web = pod(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [
                    {"name": "app", "image": "busybox"},
                    {"name": "side", "image": "busybox"}
                ]
            }
        }));
        assert_eq!(pick_container(&web, Some("setup"), false).unwrap(), "setup");
        assert_eq!(pick_container(&web, Some("side"), false).unwrap(), "side");
        assert_eq!(
            pick_container(&web, Some("nope"), false)
                .unwrap_err()
                .to_string(),
            "container nope is not valid for pod web"
        );
        assert_eq!(
            pick_container(&web, None, false).unwrap_err().to_string(),
            "a container name must be specified for pod web, choose one of: [app side] or one of the init containers: [setup]"
        );
        assert_eq!(pick_container(&web, None, true).unwrap(), "app");
        let single = pod(serde_json::json!({
            "metadata": {"name": "one"},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [{"name": "app", "image": "busybox"}]
            }
        }));
        assert_eq!(pick_container(&single, None, false).unwrap(), "app");
    }
}
