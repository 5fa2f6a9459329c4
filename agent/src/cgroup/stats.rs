//! A container's usage, read from its cgroup: CPU time, memory in use and
//! the number of tasks. Whatever a controller that is not there would tell
//! is left out; reading never fails.

use std::fs;
use std::path::Path;

use super::{CgroupDir, CgroupVersion};

/// What could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time used by the container's processes, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// Memory charged to the container, in bytes.
    pub memory_usage_bytes: Option<u64>,
    /// Tasks (processes and threads) in the container; where the pids
    /// controller is not available, the processes listed in the cgroup.
    pub pids: Option<u64>,
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`cpu.stat`).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn count_procs(dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    Some(text.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

impl CgroupDir {
    /// How many processes of the cgroup the kernel's OOM killer has killed
    /// (`oom_kill` of `memory.events` on v2, `memory.oom_control` on v1);
    /// `None` without a memory controller or on kernels that do not count.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V2 => "memory.events",
            CgroupVersion::V1 => "memory.oom_control",
        };
        let text = fs::read_to_string(self.controller("memory")?.join(file)).ok()?;
        keyed_value(&text, "oom_kill")
    }

    /// The container's usage, as far as its controllers tell.
    pub fn stats(&self) -> CgroupStats {
        let main = self.main_dir();
        let cpu_usage_ns = match self.version {
            // `cpu.stat` is a core file on v2: there with or without the
            // cpu controller.
            CgroupVersion::V2 => main
                .and_then(|d| fs::read_to_string(d.join("cpu.stat")).ok())
                .and_then(|t| keyed_value(&t, "usage_usec"))
                .map(|us| us.saturating_mul(1000)),
            CgroupVersion::V1 => self
                .controller("cpuacct")
                .and_then(|d| read_u64(&d.join("cpuacct.usage"))),
        };
        let memory_file = match self.version {
            CgroupVersion::V2 => "memory.current",
            CgroupVersion::V1 => "memory.usage_in_bytes",
        };
        let memory_usage_bytes = self
            .controller("memory")
            .and_then(|d| read_u64(&d.join(memory_file)));
        let pids = self
            .controller("pids")
            .and_then(|d| read_u64(&d.join("pids.current")))
            .or_else(|| main.and_then(count_procs));
        CgroupStats {
            cpu_usage_ns,
            memory_usage_bytes,
            pids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ControllerDir;
    use super::*;

    fn dir(version: CgroupVersion, dirs: &[(&[&str], &Path)]) -> CgroupDir {
        CgroupDir {
            version,
            dirs: dirs
                .iter()
                .map(|(c, p)| ControllerDir {
                    controllers: c.iter().map(|s| s.to_string()).collect(),
                    path: p.to_path_buf(),
                })
                .collect(),
        }
    }

    #[test]
    fn v2_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(d.join("cgroup.procs"), "12\n13\n").unwrap();
        let with_memory = dir(CgroupVersion::V2, &[(&["memory"], d)]);
        assert_eq!(with_memory.oom_kills(), Some(1));
        assert_eq!(
            with_memory.stats(),
            CgroupStats {
                cpu_usage_ns: Some(1_500_000),
                memory_usage_bytes: Some(4096),
                pids: Some(2),
            }
        );
        fs::write(d.join("pids.current"), "5\n").unwrap();
        let all = dir(CgroupVersion::V2, &[(&["memory", "pids"], d)]);
        assert_eq!(all.stats().pids, Some(5));
        // A controller that is not enabled is not read, even if a file is there.
        let none = dir(CgroupVersion::V2, &[(&[], d)]);
        assert_eq!(none.stats().memory_usage_bytes, None);
    }

    #[test]
    fn v1_files_and_missing_hierarchies() {
        let tmp = tempfile::tempdir().unwrap();
        let (acct, mem) = (tmp.path().join("acct"), tmp.path().join("mem"));
        fs::create_dir(&acct).unwrap();
        fs::create_dir(&mem).unwrap();
        fs::write(acct.join("cpuacct.usage"), "123456789\n").unwrap();
        fs::write(acct.join("cgroup.procs"), "1\n").unwrap();
        fs::write(mem.join("memory.usage_in_bytes"), "8192\n").unwrap();
        let cg = dir(
            CgroupVersion::V1,
            &[(&["cpuacct"], &acct), (&["memory"], &mem)],
        );
        assert_eq!(
            cg.stats(),
            CgroupStats {
                cpu_usage_ns: Some(123_456_789),
                memory_usage_bytes: Some(8192),
                pids: Some(1),
            }
        );
        let nothing = dir(CgroupVersion::V1, &[(&["cpu"], Path::new("/nonexistent"))]);
        assert_eq!(nothing.stats(), CgroupStats::default());
    }

    #[test]
    fn keyed_values() {
        assert_eq!(keyed_value("a 1\nusage_usec 7\n", "usage_usec"), Some(7));
        assert_eq!(keyed_value("usage_usec x\n", "usage_usec"), None);
        assert_eq!(keyed_value("", "usage_usec"), None);
    }
}
