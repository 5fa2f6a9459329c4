//! `podvm get pods -w`: a line per change, as kubectl prints them. Pod
//! owners write every status change into the records as it happens; the
//! watch waits on the state directory with inotify (no agent is asked, and
//! nothing is polled but the kernel's notification), then prints the rows
//! that differ from what it printed last.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// A pod's key: namespace and name.
pub type Key = (String, String);

/// Which rows changed since the last call.
#[derive(Default)]
pub struct RowChanges {
    printed: BTreeMap<Key, Vec<String>>,
    /// A column that changes by itself (AGE) and is not a change.
    ignored: Option<usize>,
}

impl RowChanges {
    pub fn ignoring(column: usize) -> Self {
        RowChanges {
            printed: BTreeMap::new(),
            ignored: Some(column),
        }
    }

    /// The rows of `now` that are new or differ from what was printed
    /// last, in the order given; remembers them as printed. A pod that is
    /// gone is forgotten (kubectl prints nothing more for it either).
    pub fn changed(&mut self, now: Vec<(Key, Vec<String>)>) -> Vec<Vec<String>> {
        let keys: std::collections::BTreeSet<Key> = now.iter().map(|(k, _)| k.clone()).collect();
        self.printed.retain(|k, _| keys.contains(k));
        let mut out = Vec::new();
        for (key, row) in now {
            let mut compared = row.clone();
            if let Some(i) = self.ignored.filter(|i| *i < compared.len()) {
                compared.remove(i);
            }
            if self.printed.get(&key) != Some(&compared) {
                out.push(row);
                self.printed.insert(key, compared);
            }
        }
        out
    }
}

/// Wakes up when anything under the state directory's `pods/` changes.
pub struct StateWatch {
    inotify: Inotify,
    root: PathBuf,
    watched: std::collections::HashSet<PathBuf>,
}

const FLAGS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF);

impl StateWatch {
    pub fn new(state_root: &Path) -> Result<Self> {
        let root = state_root.join("pods");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC).context("inotify_init")?;
        let mut watch = StateWatch {
            inotify,
            root,
            watched: Default::default(),
        };
        watch.add_watches();
        Ok(watch)
    }

    /// Watches `pods/`, every namespace folder and every pod folder (a
    /// record is replaced by a rename inside its pod folder).
    fn add_watches(&mut self) {
        let mut dirs = vec![self.root.clone()];
        for ns in read_dirs(&self.root) {
            dirs.extend(read_dirs(&ns));
            dirs.push(ns);
        }
        for dir in dirs {
            if !self.watched.contains(&dir) && self.inotify.add_watch(&dir, FLAGS).is_ok() {
                self.watched.insert(dir);
            }
        }
        self.watched.retain(|d| d.exists());
    }

    /// Blocks until something changed (`true`) or, as a safety net, a
    /// while passed (`false`), then drains the notifications.
    pub fn wait(&mut self) -> Result<bool> {
        let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
        let changed = match poll(&mut fds, PollTimeout::from(2000u16)) {
            Ok(n) if n > 0 => {
                let events = self
                    .inotify
                    .read_events()
                    .context("reading inotify events")?;
                !events.is_empty()
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => false,
            Err(e) => return Err(e).context("waiting for state changes"),
        };
        self.add_watches();
        Ok(changed)
    }
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: &str) -> (Key, Vec<String>) {
        (
            ("default".into(), name.into()),
            vec![name.into(), status.into()],
        )
    }

    #[test]
    fn only_changes_are_printed_and_gone_pods_forgotten() {
        let mut rows = RowChanges::default();
        assert_eq!(rows.changed(vec![row("a", "Pending")]).len(), 1);
        assert!(rows.changed(vec![row("a", "Pending")]).is_empty());
        let out = rows.changed(vec![row("a", "Running"), row("b", "Pending")]);
        assert_eq!(out, [vec!["a", "Running"], vec!["b", "Pending"]]);
        assert!(rows.changed(vec![row("b", "Pending")]).is_empty());
        assert_eq!(
            rows.changed(vec![row("a", "Running")]).len(),
            1,
            "a is new again"
        );
        let mut aging = RowChanges::ignoring(1);
        assert_eq!(aging.changed(vec![row("a", "5s")]).len(), 1);
        assert!(
            aging.changed(vec![row("a", "6s")]).is_empty(),
            "age alone is no change"
        );
    }

    #[test]
    fn a_record_written_in_a_pod_folder_wakes_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("pods/default/web");
        std::fs::create_dir_all(&pod).unwrap();
        let mut watch = StateWatch::new(dir.path()).unwrap();
        crate::state::write_atomic(&pod.join("pod.json"), b"{}").unwrap();
        assert!(
            watch.wait().unwrap(),
            "the rename into the pod folder was seen"
        );
        std::fs::create_dir_all(dir.path().join("pods/other")).unwrap();
        assert!(watch.wait().unwrap(), "a new namespace folder was seen");
        crate::state::write_atomic(&dir.path().join("pods/other/x"), b"{}").unwrap();
        std::fs::create_dir(dir.path().join("pods/other/api")).unwrap();
        assert!(watch.wait().unwrap(), "the new namespace folder is watched");
    }
}
