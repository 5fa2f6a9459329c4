//! `delete`: with the pod lock held, ask the pod's owner to take the pod
//! down (the grace period in a file, then SIGTERM) and wait while it works;
//! a pod without an owner is taken down here, under the owner lock so no
//! owner starts meanwhile.

use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{ManagerError, PodManager, Result};
use crate::hypervisor::TrackedProcess;
use crate::owner::{locks, tear_down, DeleteRequest, Keeper, DELETE_FILE, OWNER_FILE};
use crate::state::write_atomic;

/// What `kubectl delete` warns of when the pod is removed without waiting.
pub const IMMEDIATE_WARNING: &str = "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.";
/// What it warns of when `--force` has no effect.
pub const FORCE_IGNORED_WARNING: &str =
    "Warning: --force is ignored because --grace-period is not 0.";

/// The grace period a `delete` gets from its flags, by kubectl's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceChoice {
    /// `None`: the pod's own `terminationGracePeriodSeconds`.
    pub grace: Option<u64>,
    /// What to warn of on stderr.
    pub warning: Option<&'static str>,
}

impl GraceChoice {
    /// kubectl prints `force deleted` for a zero grace period.
    pub fn forced(&self) -> bool {
        self.grace == Some(0)
    }
}

/// kubectl's reading of `--grace-period` (negative: the pod's own),
/// `--force` and `--now`: `--now` is a grace period of 1; 0 without
/// `--force` becomes 1 (against accidental data loss); `--force` without a
/// grace period is 0. A zero grace period kills the containers at once and
/// skips their preStop hooks.
pub fn kubectl_grace(grace_period: i64, force: bool, now: bool) -> Result<GraceChoice> {
    let mut grace = grace_period;
    if now {
        if grace != -1 {
            return Err(
                anyhow::anyhow!("--now and --grace-period cannot be specified together").into(),
            );
        }
        grace = 1;
    }
    if grace == 0 && !force {
        grace = 1;
    }
    if force && grace < 0 {
        grace = 0;
    }
    let warning = match (grace, force) {
        (0, true) => Some(IMMEDIATE_WARNING),
        (_, true) => Some(FORCE_IGNORED_WARNING),
        _ => None,
    };
    Ok(GraceChoice {
        grace: u64::try_from(grace).ok(),
        warning,
    })
}

/// How often the pod's folder is checked while its owner takes it down.
const POLL: Duration = Duration::from_millis(20);
/// How long the agent may take to answer when `delete` dials it itself.
const DIAL_LIMIT: Duration = Duration::from_secs(10);

impl PodManager {
    /// Deletes the pod with `grace` (the pod's own period when `None`).
    pub fn delete(&self, namespace: &str, name: &str, grace: Option<u64>) -> Result<()> {
        let dir = self.state.pod_dir(namespace, name);
        if !dir.parent().is_some_and(|ns| ns.is_dir()) {
            return Err(ManagerError::NotFound {
                namespace: namespace.into(),
                name: name.into(),
            });
        }
        let busy = locks::take(&locks::pod_lock_path(&dir), true)?
            .ok_or_else(|| anyhow::anyhow!("the pod lock of {name} is held"))?;
        let result = self.delete_locked(namespace, name, grace);
        if !dir.exists() {
            // The pod is gone: its lock file goes too (still held, so a
            // waiting `apply` starts over on a fresh one).
            busy.remove();
        }
        result
    }

    fn delete_locked(&self, namespace: &str, name: &str, grace: Option<u64>) -> Result<()> {
        let dir = self.state.pod_dir(namespace, name);
        let record = self.load(namespace, name)?;
        let grace = grace.unwrap_or_else(|| crate::owner::default_grace(&record.pod));
        let request = DeleteRequest {
            grace_period_seconds: grace,
            requested_at: Some(crate::pod_status::now_rfc3339()),
        };
        write_atomic(
            &dir.join(DELETE_FILE),
            &serde_json::to_vec(&request).map_err(anyhow::Error::from)?,
        )?;
        // Whichever owner the pod had when we started; it must be gone too
        // when delete returns (nothing of the pod may be left).
        let mut owners: Vec<TrackedProcess> = read_owner(&dir).into_iter().collect();
        let result = self.take_down(namespace, name, &dir, &mut owners);
        // An owner run on a thread of this very process (the unit tests'
        // owners) ends with its thread; never wait for ourselves.
        owners.retain(|o| u32::try_from(o.pid).ok() != Some(std::process::id()));
        for owner in &owners {
            while owner.is_alive() {
                owner.reap_if_child();
                thread::sleep(POLL);
            }
        }
        result
    }

    /// Has the owner take the pod down, or does it here when there is no
    /// owner; `owners` gets every owner signalled.
    fn take_down(
        &self,
        namespace: &str,
        name: &str,
        dir: &std::path::Path,
        owners: &mut Vec<TrackedProcess>,
    ) -> Result<()> {
        let mut signalled = false;
        loop {
            if !dir.exists() {
                return Ok(());
            }
            if locks::owner_alive(dir) {
                if !signalled {
                    // An owner that has just started writes its identity
                    // right after taking its lock: look again shortly.
                    if let Some(owner) = read_owner(dir) {
                        owner.signal(Signal::SIGTERM);
                        owners.push(owner);
                        signalled = true;
                    }
                }
                for owner in owners.iter() {
                    owner.reap_if_child();
                }
                thread::sleep(POLL);
                continue;
            }
            // No owner (never had one, was killed, or just died): do it here.
            let owner_lock = match locks::take(&dir.join(locks::OWNER_LOCK), false) {
                Ok(lock) => lock,
                // The owner removed the pod meanwhile.
                Err(_) if !dir.exists() => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let Some(_owner_lock) = owner_lock else {
                continue;
            };
            if !dir.join("pod.json").exists() {
                return Ok(());
            }
            let record = self.state.load(namespace, name)?;
            let vm = record.vm.clone();
            let agent = vm
                .as_ref()
                .filter(|vm| vm.is_running())
                .and_then(|vm| self.dialer.dial(vm, Instant::now() + DIAL_LIMIT).ok());
            let keeper = Keeper::new(self.state.clone(), record);
            tear_down(&self.state, dir, &keeper, vm.as_ref(), agent.as_deref())?;
            return Ok(());
        }
    }
}

/// The owner the pod's folder names, if it names one.
fn read_owner(dir: &std::path::Path) -> Option<TrackedProcess> {
    let data = std::fs::read(dir.join(OWNER_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(grace: i64, force: bool, now: bool) -> (Option<u64>, Option<&'static str>) {
        let c = kubectl_grace(grace, force, now).unwrap();
        (c.grace, c.warning)
    }

    #[test]
    fn grace_flags_follow_kubectl() {
        assert_eq!(choice(-1, false, false), (None, None), "the pod's own");
        assert_eq!(choice(5, false, false), (Some(5), None));
        assert_eq!(choice(0, false, false), (Some(1), None), "0 needs --force");
        assert_eq!(choice(0, true, false), (Some(0), Some(IMMEDIATE_WARNING)));
        assert_eq!(choice(-1, true, false), (Some(0), Some(IMMEDIATE_WARNING)));
        assert_eq!(
            choice(5, true, false),
            (Some(5), Some(FORCE_IGNORED_WARNING))
        );
        assert_eq!(choice(-1, false, true), (Some(1), None));
        assert!(kubectl_grace(3, false, true).is_err());
        assert!(kubectl_grace(0, true, false).unwrap().forced());
    }
}
