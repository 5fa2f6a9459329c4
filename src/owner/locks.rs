//! The two locks that make one pod's operations safe against each other:
//!
//! - the **pod lock** (`pods/<ns>/.<name>.lock`, beside the pod's folder so
//!   it outlives it) is held by `apply` from claiming the name until the
//!   owner took over, and by `delete` throughout: an `apply` and a `delete`
//!   of one pod run one after the other, never interleaved;
//! - the **owner lock** (`<pod>/owner.lock`) is held by the pod's owner for
//!   its whole life: whoever can take it knows no owner is alive (the kernel
//!   drops a flock when its holder dies, even by SIGKILL).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// File name of the owner lock in the pod's folder.
pub const OWNER_LOCK: &str = "owner.lock";

/// A held flock; released on drop.
pub struct Held {
    lock: Flock<File>,
    path: PathBuf,
}

impl Held {
    /// Removes the lock file, still holding the lock: whoever waits on the
    /// old file notices (see [`take`]) and starts over on a new one.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.lock);
    }
}

/// Whether `lock` still is the file at `path` (not removed or replaced
/// while we waited for it).
fn still_there(lock: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (lock.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(now)) => held.ino() == now.ino() && held.dev() == now.dev(),
        _ => false,
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// Takes the lock at `path`, waiting for its holder if `wait`; `None` when
/// it is held and `wait` is false.
pub fn take(path: &Path, wait: bool) -> Result<Option<Held>> {
    let arg = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    let mut file = open(path)?;
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) if still_there(&lock, path) => {
                return Ok(Some(Held {
                    lock,
                    path: path.to_path_buf(),
                }))
            }
            Ok(stale) => {
                drop(stale);
                file = open(path)?;
            }
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

/// The pod lock's path for a pod folder `<root>/pods/<ns>/<name>`.
pub fn pod_lock_path(pod_dir: &Path) -> PathBuf {
    let name = pod_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    pod_dir.with_file_name(format!(".{name}.lock"))
}

/// Whether an owner holds the pod's owner lock right now.
pub fn owner_alive(pod_dir: &Path) -> bool {
    let path = pod_dir.join(OWNER_LOCK);
    if !path.exists() {
        return false;
    }
    matches!(take(&path, false), Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("web");
        std::fs::create_dir(&pod).unwrap();
        assert!(!owner_alive(&pod));
        let held = take(&pod.join(OWNER_LOCK), false).unwrap().expect("free");
        assert!(
            owner_alive(&pod),
            "another open file description sees it held"
        );
        assert!(take(&pod.join(OWNER_LOCK), false).unwrap().is_none());
        drop(held);
        assert!(!owner_alive(&pod));
        assert_eq!(pod_lock_path(&pod), dir.path().join(".web.lock"));
    }

    #[test]
    fn a_waiter_on_a_removed_lock_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".web.lock");
        let held = take(&path, false).unwrap().expect("free");
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || take(&path, true).unwrap().expect("taken"))
        };
        // Whether the waiter opened the old file or not, it must end up
        // holding the file that is at the path.
        held.remove();
        let won = waiter.join().unwrap();
        assert!(path.exists(), "the waiter made a new lock file");
        assert!(take(&path, false).unwrap().is_none(), "and holds it");
        drop(won);
    }
}
