//! A container's limits from the OCI spec's `linux.resources`, written to
//! its cgroup: CPU shares and CFS quota/period, the memory limit and the
//! pids limit. Other fields (devices, block I/O, hugepages, swap, cpusets,
//! unified) are not applied: the guest's devices are what the agent mounts,
//! and it has no swap.
//!
//! All values are checked and every needed controller looked up before
//! anything is written; a controller the cgroup does not have is named in
//! the error.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{CgroupDir, CgroupVersion};

/// CFS period the kernel starts with (100 ms), used on v2 when only a
/// quota is given and the cgroup has no period yet.
const DEFAULT_PERIOD_US: u64 = 100_000;

/// Why limits could not be set.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("linux.resources.{field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("the {0} cgroup controller is not available to the container")]
    MissingController(&'static str),
    #[error("writing {}: {source}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn invalid(field: &'static str, why: impl Into<String>) -> ResourceError {
    ResourceError::Invalid {
        field,
        why: why.into(),
    }
}

/// The limits asked for, checked. `None`: leave as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu_shares: Option<u64>,
    /// Microseconds per period; `Some(None)`: unlimited.
    pub cpu_quota: Option<Option<u64>>,
    pub cpu_period: Option<u64>,
    /// Bytes; `Some(None)`: unlimited.
    pub memory: Option<Option<u64>>,
    /// Tasks; `Some(None)`: unlimited.
    pub pids: Option<Option<u64>>,
}

impl Limits {
    /// Checks the fields podvm applies (0 means unset, as runc reads them).
    pub fn from_spec(r: &LinuxResources) -> Result<Limits, ResourceError> {
        let mut limits = Limits::default();
        if let Some(cpu) = r.cpu() {
            match cpu.shares() {
                None | Some(0) => {}
                Some(s @ 2..=262_144) => limits.cpu_shares = Some(s),
                Some(s) => return Err(invalid("cpu.shares", format!("{s} is not in 2..=262144"))),
            }
            limits.cpu_quota = match cpu.quota() {
                None | Some(0) => None,
                Some(q) if q < 0 => Some(None),
                Some(q @ 1000..) => Some(Some(q.unsigned_abs())),
                Some(q) => return Err(invalid("cpu.quota", format!("{q} is below 1000 µs"))),
            };
            limits.cpu_period = match cpu.period() {
                None | Some(0) => None,
                Some(p @ 1000..=1_000_000) => Some(p),
                Some(p) => {
                    return Err(invalid(
                        "cpu.period",
                        format!("{p} is not in 1000..=1000000 µs"),
                    ))
                }
            };
        }
        if let Some(memory) = r.memory() {
            limits.memory = match memory.limit() {
                None | Some(0) => None,
                Some(-1) => Some(None),
                Some(l) if l > 0 => Some(Some(l.unsigned_abs())),
                Some(l) => return Err(invalid("memory.limit", format!("{l} is negative"))),
            };
        }
        if let Some(pids) = r.pids() {
            limits.pids = match pids.limit() {
                0 => None,
                l if l < 0 => Some(None),
                l => Some(Some(l.unsigned_abs())),
            };
        }
        Ok(limits)
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

fn setting(controller: &'static str, file: &'static str, value: impl ToString) -> Setting {
    Setting {
        controller,
        file,
        value: value.to_string(),
    }
}

/// cgroup v2's `cpu.weight` for v1 `cpu.shares` (runc's conversion).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// Parses v2's `cpu.max` (`max 100000` or `50000 100000`).
fn parse_cpu_max(text: &str) -> (Option<u64>, Option<u64>) {
    let mut fields = text.split_whitespace();
    let quota = fields.next().and_then(|q| q.parse().ok());
    let period = fields.next().and_then(|p| p.parse().ok());
    (quota, period)
}

/// The writes that set `limits` on a cgroup of `version`; `current_cpu_max`
/// is v2's `cpu.max` now (for a quota or period given alone).
pub fn plan(limits: &Limits, version: CgroupVersion, current_cpu_max: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    match version {
        CgroupVersion::V1 => {
            if let Some(shares) = limits.cpu_shares {
                out.push(setting("cpu", "cpu.shares", shares));
            }
            // The period first: a quota is checked against it.
            if let Some(period) = limits.cpu_period {
                out.push(setting("cpu", "cpu.cfs_period_us", period));
            }
            if let Some(quota) = limits.cpu_quota {
                let value = quota.map_or_else(|| "-1".to_string(), |q| q.to_string());
                out.push(setting("cpu", "cpu.cfs_quota_us", value));
            }
            if let Some(memory) = limits.memory {
                let value = memory.map_or_else(|| "-1".to_string(), |m| m.to_string());
                out.push(setting("memory", "memory.limit_in_bytes", value));
            }
        }
        CgroupVersion::V2 => {
            if let Some(shares) = limits.cpu_shares {
                out.push(setting("cpu", "cpu.weight", shares_to_weight(shares)));
            }
            if limits.cpu_quota.is_some() || limits.cpu_period.is_some() {
                let (now_quota, now_period) = parse_cpu_max(current_cpu_max);
                let quota = limits.cpu_quota.unwrap_or(now_quota);
                let period = limits
                    .cpu_period
                    .or(now_period)
                    .unwrap_or(DEFAULT_PERIOD_US);
                let quota = quota.map_or_else(|| "max".to_string(), |q| q.to_string());
                out.push(setting("cpu", "cpu.max", format!("{quota} {period}")));
            }
            if let Some(memory) = limits.memory {
                let value = memory.map_or_else(|| "max".to_string(), |m| m.to_string());
                out.push(setting("memory", "memory.max", value));
            }
        }
    }
    if let Some(pids) = limits.pids {
        let value = pids.map_or_else(|| "max".to_string(), |p| p.to_string());
        out.push(setting("pids", "pids.max", value));
    }
    out
}

/// Sets `resources` on `cgroup` (`None`: the container has no cgroup, so
/// any limit is refused naming its controller).
pub fn apply(cgroup: Option<&CgroupDir>, resources: &LinuxResources) -> Result<(), ResourceError> {
    let limits = Limits::from_spec(resources)?;
    if limits.is_empty() {
        return Ok(());
    }
    let version = cgroup.map_or(CgroupVersion::V2, |c| c.version);
    let current_cpu_max = cgroup
        .and_then(|c| c.controller("cpu"))
        .and_then(|d| fs::read_to_string(d.join("cpu.max")).ok())
        .unwrap_or_default();
    let settings = plan(&limits, version, &current_cpu_max);
    let mut targets: Vec<(&Path, &Setting)> = Vec::with_capacity(settings.len());
    for s in &settings {
        let dir = cgroup
            .and_then(|c| c.controller(s.controller))
            .ok_or(ResourceError::MissingController(s.controller))?;
        targets.push((dir, s));
    }
    for (dir, s) in targets {
        let file = dir.join(s.file);
        fs::write(&file, &s.value).map_err(|source| ResourceError::Write { file, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn files(settings: &[Setting]) -> Vec<(&str, &str)> {
        settings
            .iter()
            .map(|s| (s.file, s.value.as_str()))
            .collect()
    }

    #[test]
    fn v1_and_v2_files() {
        let r = resources(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":100000},
                "memory":{"limit":67108864,"swap":67108864},"pids":{"limit":64},
                "devices":[{"allow":false,"access":"rwm"}]}"#,
        );
        let limits = Limits::from_spec(&r).unwrap();
        assert_eq!(
            files(&plan(&limits, CgroupVersion::V1, "")),
            [
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("memory.limit_in_bytes", "67108864"),
                ("pids.max", "64"),
            ]
        );
        assert_eq!(
            files(&plan(&limits, CgroupVersion::V2, "max 100000")),
            [
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("memory.max", "67108864"),
                ("pids.max", "64"),
            ]
        );
    }

    #[test]
    fn unlimited_and_partial_values() {
        let r = resources(r#"{"cpu":{"quota":-1},"memory":{"limit":-1},"pids":{"limit":-1}}"#);
        let limits = Limits::from_spec(&r).unwrap();
        assert_eq!(
            files(&plan(&limits, CgroupVersion::V2, "20000 50000")),
            [
                ("cpu.max", "max 50000"),
                ("memory.max", "max"),
                ("pids.max", "max")
            ]
        );
        assert_eq!(
            files(&plan(&limits, CgroupVersion::V1, "")),
            [
                ("cpu.cfs_quota_us", "-1"),
                ("memory.limit_in_bytes", "-1"),
                ("pids.max", "max")
            ]
        );
        let quota_only = Limits::from_spec(&resources(r#"{"cpu":{"quota":25000}}"#)).unwrap();
        assert_eq!(
            files(&plan(&quota_only, CgroupVersion::V2, "")),
            [("cpu.max", "25000 100000")]
        );
        let zeros = resources(r#"{"cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":0}}"#);
        assert!(Limits::from_spec(&zeros).unwrap().is_empty());
    }

    #[test]
    fn bad_values_name_the_field() {
        for (json, field) in [
            (r#"{"cpu":{"shares":1}}"#, "cpu.shares"),
            (r#"{"cpu":{"quota":10}}"#, "cpu.quota"),
            (r#"{"cpu":{"period":10}}"#, "cpu.period"),
            (r#"{"memory":{"limit":-5}}"#, "memory.limit"),
        ] {
            let e = Limits::from_spec(&resources(json)).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn missing_controllers_are_named_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = CgroupDir {
            version: CgroupVersion::V2,
            dirs: vec![super::super::ControllerDir {
                controllers: vec!["pids".into()],
                path: tmp.path().to_path_buf(),
            }],
        };
        let r = resources(r#"{"pids":{"limit":5},"memory":{"limit":1048576}}"#);
        let e = apply(Some(&cg), &r).unwrap_err();
        assert!(
            matches!(e, ResourceError::MissingController("memory")),
            "{e}"
        );
        assert!(!tmp.path().join("pids.max").exists());
        apply(Some(&cg), &resources(r#"{"pids":{"limit":5}}"#)).unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("pids.max")).unwrap(),
            "5"
        );
        let e = apply(None, &resources(r#"{"cpu":{"shares":512}}"#)).unwrap_err();
        assert!(matches!(e, ResourceError::MissingController("cpu")), "{e}");
        apply(None, &resources("{}")).unwrap();
    }
}
