//! The host's side of a pod's conditions, in `<pod>/conditions.json`
//! beside the record: the conditions set through `patch
//! --subresource=status` (readiness gates) and the mark that keeps
//! `Ready`'s `lastTransitionTime` still until `Ready` changes.
//!
//! Why a file of its own rather than fields of `pod.json`: the pod's owner
//! keeps the record in memory and rewrites all of it on every status or
//! event update, so a condition `patch` wrote into `pod.json` would be
//! lost at the owner's next write unless every writer re-read and merged
//! under one lock, in the owner's hot path. Here each file has one kind of
//! content: `pod.json` is the owner's, `conditions.json` is changed only
//! under [`CONDITIONS_LOCK`] by read-modify-write (by `patch`, and by the
//! record's save when `Ready` flips), and is written atomically, so
//! readers (`get`, `describe`) see the old or the new version and join it
//! in.

use std::path::Path;

use anyhow::{Context, Result};
use podvm_proto::PodConditionType;
use serde::{Deserialize, Serialize};

use super::conditions::{decide_ready, readiness_gates, reported, GateCondition};
use crate::owner::locks;
use crate::state::{write_atomic, PodRecord};

/// The file in the pod's folder.
pub const CONDITIONS_FILE: &str = "conditions.json";
/// The flock its writers hold.
pub const CONDITIONS_LOCK: &str = "conditions.lock";

/// What `conditions.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConditions {
    /// Conditions set through the status subresource, in the order they
    /// were first set.
    #[serde(default)]
    pub gates: Vec<GateCondition>,
    /// `Ready` as last decided, and since when.
    #[serde(default)]
    pub ready: Option<ReadyMark>,
}

/// `Ready`'s status and the time it took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyMark {
    pub status: bool,
    /// RFC 3339.
    pub since: String,
}

impl HostConditions {
    /// The pod's file; nothing there: no conditions set yet.
    pub fn load(pod_dir: &Path) -> Result<Self> {
        let path = pod_dir.join(CONDITIONS_FILE);
        match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .with_context(|| format!("corrupt conditions file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn save(&self, pod_dir: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).context("cannot encode conditions")?;
        write_atomic(&pod_dir.join(CONDITIONS_FILE), &data)
    }

    /// Sets the mark for `status` if `Ready` changed (or had none).
    pub fn mark_ready(&mut self, status: bool, at: &str) -> bool {
        if self.ready.as_ref().is_some_and(|m| m.status == status) {
            return false;
        }
        self.ready = Some(ReadyMark {
            status,
            since: at.to_string(),
        });
        true
    }
}

/// Applies `change` to the pod's conditions file under its lock; the file
/// is written when `change` says it changed something.
pub fn update<R>(
    pod_dir: &Path,
    change: impl FnOnce(&mut HostConditions) -> Result<(R, bool)>,
) -> Result<R> {
    let _held = locks::take(&pod_dir.join(CONDITIONS_LOCK), true)?
        .context("the conditions lock was not taken")?;
    let mut conditions = HostConditions::load(pod_dir)?;
    let (result, changed) = change(&mut conditions)?;
    if changed {
        conditions.save(pod_dir)?;
    }
    Ok(result)
}

/// Called each time the record is saved: moves `Ready`'s mark when the
/// agent's `ContainersReady` flipped it (at that condition's transition
/// time). Pods without readiness gates need no mark.
pub fn track_ready(pod_dir: &Path, record: &PodRecord) -> Result<()> {
    let gates = readiness_gates(&record.pod);
    let Some(st) = record.last_status.as_ref().filter(|_| !gates.is_empty()) else {
        return Ok(());
    };
    let cr = reported(st, PodConditionType::ContainersReady);
    let current = HostConditions::load(pod_dir)?;
    let decision = decide_ready(&gates, cr, &current.gates);
    if current
        .ready
        .as_ref()
        .is_some_and(|m| m.status == decision.status)
    {
        return Ok(());
    }
    let at = cr
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(super::now_rfc3339);
    update(pod_dir, |c| {
        // Decided again under the lock: a patch may have come between.
        let decision = decide_ready(&gates, cr, &c.gates);
        Ok(((), c.mark_ready(decision.status, &at)))
    })
}
