//! The pod manager: what the CLI commands call. It creates a pod's record
//! and launch plan and hands the pod to its owner (`crate::owner`), makes
//! sure every pod that needs an owner has one (taking over after a killed
//! owner or an interrupted `apply`), and deletes pods through their owner.
//! Operations on one pod are serialised by the pod lock. The owner is
//! started through [`OwnerLauncher`] and the agent reached through an
//! `AgentDialer`, so all of it runs against fakes in unit tests.

mod create;
mod delete;

pub use delete::kubectl_grace;

use std::path::Path;
use std::sync::Arc;

use crate::owner::{locks, AgentDialer, FailureReason};
use crate::state::{PodRecord, StateDir};

/// Why a pod operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("Error from server (NotFound): pods \"{name}\" not found")]
    NotFound { namespace: String, name: String },
    #[error("Error from server (AlreadyExists): pods \"{name}\" already exists in namespace \"{namespace}\" (delete it first: podvm delete pod {name})")]
    AlreadyExists { namespace: String, name: String },
    /// The pod could not be started; nothing of it was kept.
    #[error("{message}")]
    StartFailed {
        reason: FailureReason,
        message: String,
    },
    /// The pod's owner ended without finishing its work.
    #[error("the owner of pod \"{name}\" ended unexpectedly; see {log}")]
    OwnerLost { name: String, log: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, ManagerError>;

/// How an owner is started for a pod (a process in production).
pub trait OwnerLauncher: Send + Sync {
    fn launch(&self, namespace: &str, name: &str, pod_dir: &Path) -> anyhow::Result<()>;
}

/// Starts owners as `podvm __owner` processes.
pub struct ProcessLauncher {
    pub state_root: std::path::PathBuf,
}

impl OwnerLauncher for ProcessLauncher {
    fn launch(&self, namespace: &str, name: &str, pod_dir: &Path) -> anyhow::Result<()> {
        crate::owner::start_owner(&self.state_root, namespace, name, pod_dir)
    }
}

pub struct PodManager {
    pub state: StateDir,
    launcher: Box<dyn OwnerLauncher>,
    dialer: Arc<dyn AgentDialer>,
}

impl PodManager {
    pub fn new(
        state: StateDir,
        launcher: Box<dyn OwnerLauncher>,
        dialer: Arc<dyn AgentDialer>,
    ) -> Self {
        PodManager {
            state,
            launcher,
            dialer,
        }
    }

    /// The pod's record; the pod gets an owner first if it needs one and
    /// has none (its owner was killed, or `apply` was interrupted).
    pub fn get(&self, namespace: &str, name: &str) -> Result<PodRecord> {
        let record = self.load(namespace, name)?;
        self.ensure_owner(namespace, name, &record)?;
        Ok(record)
    }

    /// All pods (of one namespace), each with an owner where it needs one.
    pub fn list(&self, namespace: Option<&str>) -> Result<Vec<PodRecord>> {
        let records = self.state.list(namespace)?;
        for r in &records {
            let (ns, name) = crate::manifest::pod_key(&r.pod)?;
            self.ensure_owner(&ns, &name, r)?;
        }
        Ok(records)
    }

    fn load(&self, namespace: &str, name: &str) -> Result<PodRecord> {
        if !self
            .state
            .pod_dir(namespace, name)
            .join("pod.json")
            .exists()
        {
            return Err(ManagerError::NotFound {
                namespace: namespace.into(),
                name: name.into(),
            });
        }
        Ok(self.state.load(namespace, name)?)
    }

    /// Starts an owner for the pod if it needs one, none is alive, and no
    /// `apply` or `delete` of it is under way (they hold the pod lock).
    pub fn ensure_owner(&self, namespace: &str, name: &str, record: &PodRecord) -> Result<()> {
        let dir = self.state.pod_dir(namespace, name);
        if !record.lifecycle.needs_owner() || locks::owner_alive(&dir) {
            return Ok(());
        }
        let Some(_busy) = locks::take(&locks::pod_lock_path(&dir), false)? else {
            return Ok(());
        };
        if !dir.exists() || locks::owner_alive(&dir) {
            return Ok(());
        }
        self.launcher.launch(namespace, name, &dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
