//! The state directory: one folder per pod holding its record (the manifest
//! plus what podvm started for it), the VM's sockets and console log.
//!
//! ```text
//! <state-dir>/pods/<namespace>/<name>/pod.json      PodRecord, written atomically
//!                                     /conditions.json  conditions set by `patch`, Ready's mark
//!                                     /vm/…         sockets, console.log, VM process files
//! ```
//! Records are written to a temporary file, fsynced and renamed, so a crash
//! leaves either the old or the new record, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use crate::hypervisor::VmRecord;
use crate::owner::Lifecycle;

/// Where podvm keeps pod state.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Everything podvm remembers about one pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    /// The Pod as applied, with `metadata.uid`, `namespace` and
    /// `creationTimestamp` filled in.
    pub pod: Pod,
    /// The VM running the pod, once started.
    pub vm: Option<VmRecord>,
    /// The sandbox status the agent last reported: kept current by the
    /// pod's owner from the agent's event watch, so `get` reads it here
    /// without asking the agent, and it stays readable after the VM died.
    #[serde(default)]
    pub last_status: Option<podvm_proto::SandboxStatus>,
    /// Where the pod is in its life on the host (written by its owner).
    #[serde(default = "Lifecycle::legacy")]
    pub lifecycle: Lifecycle,
    /// The pod's events, oldest first (the agent's, folded as they were
    /// updated, and the owner's own), at most [`MAX_EVENTS`].
    #[serde(default)]
    pub events: Vec<podvm_proto::Event>,
    /// How far the owner's event watch got.
    #[serde(default)]
    pub watch: WatchCursor,
}

/// Most events kept per pod (Kubernetes keeps them for an hour).
pub const MAX_EVENTS: usize = 200;

/// The event watch's position: the last event sequence number and status
/// generation the owner has recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCursor {
    pub after_seq: u64,
    pub status_generation: u64,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pod_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.root.join("pods").join(namespace).join(name)
    }

    /// Claims the folder for a new pod; fails if the pod already exists.
    pub fn create_pod_dir(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        let parent = self.root.join("pods").join(namespace);
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create state directory {}", parent.display()))?;
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("pods \"{name}\" already exists in namespace \"{namespace}\" (delete it first: podvm delete pod {name})")
            }
            Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }

    pub fn save(&self, record: &PodRecord) -> Result<()> {
        let (ns, name) = crate::manifest::pod_key(&record.pod)?;
        let dir = self.pod_dir(&ns, &name);
        let data = serde_json::to_vec_pretty(record).context("cannot encode pod record")?;
        write_atomic(&dir.join("pod.json"), &data)?;
        // `Ready` follows the agent's `ContainersReady` and the pod's
        // readiness gates; its transition is marked beside the record.
        crate::pod_status::track_ready(&dir, record)
    }

    pub fn load(&self, namespace: &str, name: &str) -> Result<PodRecord> {
        let path = self.pod_dir(namespace, name).join("pod.json");
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("pods \"{name}\" not found in namespace \"{namespace}\"")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_slice(&data)
            .with_context(|| format!("corrupt pod record {}", path.display()))
    }

    /// All pod records, optionally of one namespace, sorted by namespace and name.
    /// Folders without a record (a pod being created) are skipped.
    pub fn list(&self, namespace: Option<&str>) -> Result<Vec<PodRecord>> {
        let pods = self.root.join("pods");
        let mut out = Vec::new();
        let namespaces: Vec<String> = match namespace {
            Some(ns) => vec![ns.to_string()],
            None => read_names(&pods)?,
        };
        for ns in namespaces {
            for name in read_names(&pods.join(&ns))? {
                match self.load(&ns, &name) {
                    Ok(r) => out.push(r),
                    Err(_) if !self.pod_dir(&ns, &name).join("pod.json").exists() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Removes a pod's folder and everything in it.
    /// The folder is first renamed aside (atomically: from then on the
    /// pod is gone for every reader, never half there), then removed.
    pub fn remove(&self, namespace: &str, name: &str) -> Result<()> {
        let dir = self.pod_dir(namespace, name);
        let aside = dir.with_file_name(format!(".{name}.removing.{}", std::process::id()));
        match fs::rename(&dir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
        }
        fs::remove_dir_all(&aside).with_context(|| format!("cannot remove {}", aside.display()))
    }
}

fn read_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            // Dot names are ours (a pod being removed); no namespace or
            // pod name can start with a dot.
            if let Some(n) = entry.file_name().to_str().filter(|n| !n.starts_with('.')) {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Writes `data` to `path` so that readers see the old or the new content.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without a parent")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot rename into {}", path.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}
