//! Finding the cgroup hierarchies: cgroup2 mounted at the cgroup root, or
//! cgroup v1 hierarchies mounted below it (from `/proc/self/mountinfo`),
//! with the agent's own place in each (`/proc/self/cgroup`).

use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::{CgroupVersion, CONTROLLERS, V1_CONTROLLERS};

/// A hierarchy the agent can place containers in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHierarchy {
    pub controllers: Vec<String>,
    pub mount: PathBuf,
    /// Where the agent's subtree goes, relative to the hierarchy's root:
    /// the root on v2 (exempt from the no-internal-processes rule), the
    /// agent's own cgroup on v1 (so the host's limits on it keep holding).
    pub own: PathBuf,
}

/// The hierarchies found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: CgroupVersion,
    pub hierarchies: Vec<FoundHierarchy>,
}

/// The layout at `mount` (normally `/sys/fs/cgroup`), if usable.
pub fn detect_layout(mount: &Path) -> Option<Layout> {
    if statfs(mount).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
        let controllers = std::fs::read_to_string(mount.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .filter(|c| CONTROLLERS.contains(c))
            .map(str::to_string)
            .collect();
        return Some(Layout {
            version: CgroupVersion::V2,
            hierarchies: vec![FoundHierarchy {
                controllers,
                mount: mount.to_path_buf(),
                own: PathBuf::from("/"),
            }],
        });
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let hierarchies = v1_hierarchies(&mountinfo, &own, mount);
    (!hierarchies.is_empty()).then_some(Layout {
        version: CgroupVersion::V1,
        hierarchies,
    })
}

/// The v1 hierarchies below `root` that carry one of [`V1_CONTROLLERS`],
/// from the text of mountinfo and of `/proc/self/cgroup`.
pub fn v1_hierarchies(mountinfo: &str, own_cgroups: &str, root: &Path) -> Vec<FoundHierarchy> {
    let mut found: Vec<FoundHierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut tail = after.split(' ');
        let (Some("cgroup"), Some(_source), Some(options)) =
            (tail.next(), tail.next(), tail.next())
        else {
            continue;
        };
        let Some(mount_point) = before.split(' ').nth(4) else {
            continue;
        };
        let mount_point = PathBuf::from(mount_point);
        if !mount_point.starts_with(root) {
            continue;
        }
        let controllers: Vec<String> = options
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() || found.iter().any(|f| f.controllers == controllers) {
            continue;
        }
        let Some(own) = own_path(own_cgroups, &controllers) else {
            continue;
        };
        found.push(FoundHierarchy {
            controllers,
            mount: mount_point,
            own,
        });
    }
    found
}

/// The agent's cgroup in the v1 hierarchy carrying exactly `controllers`.
fn own_path(own_cgroups: &str, controllers: &[String]) -> Option<PathBuf> {
    own_cgroups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_id, list, path) = (fields.next()?, fields.next()?, fields.next()?);
        let mut listed: Vec<&str> = list
            .split(',')
            .filter(|c| V1_CONTROLLERS.contains(c))
            .collect();
        listed.sort_unstable();
        let mut wanted: Vec<&str> = controllers.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        (!listed.is_empty() && listed == wanted && path.starts_with('/'))
            .then(|| PathBuf::from(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
36 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 23 0:33 / /elsewhere/memory rw,relatime - cgroup cgroup rw,memory
";
    const OWN: &str = "\
8:pids:/
6:freezer:/
4:memory:/session/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn finds_v1_hierarchies_and_the_agents_place() {
        let found = v1_hierarchies(MOUNTINFO, OWN, Path::new("/sys/fs/cgroup"));
        let summary: Vec<(String, String, String)> = found
            .iter()
            .map(|f| {
                (
                    f.controllers.join(","),
                    f.mount.display().to_string(),
                    f.own.display().to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("cpu".into(), "/sys/fs/cgroup/cpu".into(), "/".into()),
                (
                    "cpuacct".into(),
                    "/sys/fs/cgroup/cpuacct".into(),
                    "/".into()
                ),
                (
                    "memory".into(),
                    "/sys/fs/cgroup/memory".into(),
                    "/session/abc".into()
                ),
                ("pids".into(), "/sys/fs/cgroup/pids".into(), "/".into()),
            ]
        );
    }

    #[test]
    fn co_mounted_controllers_are_one_hierarchy() {
        let mountinfo =
            "31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n";
        let own = "3:cpu,cpuacct:/x\n";
        let found = v1_hierarchies(mountinfo, own, Path::new("/sys/fs/cgroup"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].controllers, ["cpuacct", "cpu"]);
        assert_eq!(found[0].own, PathBuf::from("/x"));
        assert!(v1_hierarchies("garbage\n\n - cgroup", own, Path::new("/")).is_empty());
    }
}
