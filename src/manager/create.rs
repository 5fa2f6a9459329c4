//! `apply`: claim the pod's name, write its record (`Creating`) and launch
//! plan, hand it to a new owner, and wait — on the owner's progress, not a
//! clock — until the owner says it runs or failed. A pod that failed to
//! start is removed (nothing is kept); a pod whose `apply` was killed is
//! finished by its owner all the same.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use super::{ManagerError, PodManager, Result};
use crate::owner::{locks, LaunchPlan, Lifecycle, OWNER_FILE, OWNER_LOG};
use crate::state::{PodRecord, WatchCursor};

/// How often the record is read while the owner boots the pod.
const POLL: Duration = Duration::from_millis(20);
/// Last resort: how long a launched owner may take to show up at all.
const OWNER_START_LIMIT: Duration = Duration::from_secs(120);

impl PodManager {
    /// Creates and starts the pod; returns its record once it runs.
    pub fn create(&self, pod: Pod, plan: LaunchPlan) -> Result<PodRecord> {
        let (namespace, name) = crate::manifest::pod_key(&pod)?;
        let dir = self.state.pod_dir(&namespace, &name);
        let parent = dir
            .parent()
            .ok_or_else(|| anyhow::anyhow!("bad state dir"))?;
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        let busy = locks::take(&locks::pod_lock_path(&dir), true)?
            .ok_or_else(|| anyhow::anyhow!("the pod lock of {name} is held"))?;
        let result = self.create_locked(pod, plan, &namespace, &name, &dir);
        if !dir.exists() {
            busy.remove();
        }
        result
    }

    fn create_locked(
        &self,
        pod: Pod,
        mut plan: LaunchPlan,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> Result<PodRecord> {
        self.claim(namespace, name, dir)?;
        plan.vm.run_dir = dir.join("vm");
        let record = PodRecord {
            pod,
            vm: None,
            last_status: None,
            lifecycle: Lifecycle::Creating,
            events: Vec::new(),
            watch: WatchCursor::default(),
        };
        let written = plan
            .save(dir)
            .and_then(|()| self.state.save(&record))
            .and_then(|()| self.launcher.launch(namespace, name, dir));
        if let Err(e) = written {
            let _ = self.state.remove(namespace, name);
            return Err(e.into());
        }
        self.await_start(namespace, name, dir)
    }

    /// Takes the pod's folder. One left without a record by an `apply`
    /// killed before it wrote one is debris (we hold the pod lock, so no
    /// `apply` is under way) and is cleared.
    fn claim(&self, namespace: &str, name: &str, dir: &Path) -> Result<()> {
        if dir.exists() && !dir.join("pod.json").exists() {
            self.state.remove(namespace, name)?;
        }
        match self.state.create_pod_dir(namespace, name) {
            Ok(_) => Ok(()),
            Err(_) if dir.exists() => Err(ManagerError::AlreadyExists {
                namespace: namespace.into(),
                name: name.into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the owner recorded the pod running or failed.
    fn await_start(&self, namespace: &str, name: &str, dir: &Path) -> Result<PodRecord> {
        let launched = Instant::now();
        loop {
            let record = self.state.load(namespace, name)?;
            match &record.lifecycle {
                Lifecycle::Running | Lifecycle::Deleting => return Ok(record),
                Lifecycle::Failed { reason, message } => {
                    let failure = ManagerError::StartFailed {
                        reason: *reason,
                        message: message.clone(),
                    };
                    self.state.remove(namespace, name)?;
                    return Err(failure);
                }
                Lifecycle::Creating => {}
            }
            let started = dir.join(OWNER_FILE).exists();
            if (started && !locks::owner_alive(dir))
                || (!started && launched.elapsed() > OWNER_START_LIMIT)
            {
                return Err(ManagerError::OwnerLost {
                    name: name.into(),
                    log: dir.join(OWNER_LOG).display().to_string(),
                });
            }
            thread::sleep(POLL);
        }
    }
}
