//! What podvm runs of the OCI runtime spec, checked before a container is
//! created: the message names the field. Refused: user and time
//! namespaces (and id mappings), joining a PID, mount or cgroup namespace
//! by path, hooks, seccomp, sysctls, extra device nodes, Intel RDT,
//! personality, a terminal for the container's process (exec on a
//! terminal instead), recursive mount options and filesystems other than
//! the kernel's own (bind, proc, sysfs, tmpfs, devpts, mqueue, cgroup).
//! AppArmor and SELinux labels are ignored: the guest kernel has no such
//! module.

use std::path::{Component, Path};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Process, Spec};

use super::SpecError;
use crate::cgroup::resources::Limits;

/// Mount options podvm does not implement.
const UNSUPPORTED_OPTIONS: [&str; 6] =
    ["tmpcopyup", "rro", "rrw", "idmap", "ridmap", "copy-symlink"];

/// Filesystem types a mount may have: the kernel's own, which mount at
/// once (a network or block filesystem could hold the container's start).
const MOUNT_TYPES: [&str; 8] = [
    "bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
];

/// The rootfs propagation modes a spec may ask for.
pub const PROPAGATIONS: [&str; 8] = [
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

fn invalid(field: impl Into<String>, why: impl Into<String>) -> SpecError {
    SpecError::invalid(field, why)
}

fn required(field: &str) -> SpecError {
    invalid(field, "Required value")
}

/// An absolute path without `..` (a path inside the container).
fn container_path(field: &str, path: &Path) -> Result<(), SpecError> {
    if !path.is_absolute() {
        return Err(invalid(
            field,
            format!("{} is not an absolute path", path.display()),
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(field, format!("{} contains ..", path.display())));
    }
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(invalid(field, "contains a NUL byte"));
    }
    Ok(())
}

fn no_nul(field: &str, list: &[String]) -> Result<(), SpecError> {
    match list.iter().position(|s| s.contains('\0')) {
        Some(i) => Err(invalid(format!("{field}[{i}]"), "contains a NUL byte")),
        None => Ok(()),
    }
}

/// Checks that podvm can run `spec`.
pub fn check(spec: &Spec) -> Result<(), SpecError> {
    if !spec.version().starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{:?}: only 1.x specs are supported", spec.version()),
        ));
    }
    check_process(spec.process().as_ref().ok_or_else(|| required("process"))?)?;
    if spec.root().is_none() {
        return Err(required("root"));
    }
    if spec.hooks().is_some() {
        return Err(invalid("hooks", "hooks are not supported"));
    }
    if let Some(hostname) = spec.hostname() {
        if hostname.len() > 64 || hostname.contains(['\0', '\n']) {
            return Err(invalid(
                "hostname",
                format!("{hostname:?} is not a host name"),
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        check_mount(&format!("mounts[{i}]"), m)?;
    }
    check_linux(spec)
}

fn check_process(p: &Process) -> Result<(), SpecError> {
    let args = p.args().as_deref().unwrap_or_default();
    if args.first().is_none_or(String::is_empty) {
        return Err(required("process.args"));
    }
    no_nul("process.args", args)?;
    let env = p.env().as_deref().unwrap_or_default();
    no_nul("process.env", env)?;
    if let Some(i) = env
        .iter()
        .position(|e| !e.contains('=') || e.starts_with('='))
    {
        return Err(invalid(format!("process.env[{i}]"), "is not NAME=value"));
    }
    container_path("process.cwd", p.cwd())?;
    if p.terminal() == Some(true) {
        return Err(invalid(
            "process.terminal",
            "a terminal for the container's process is not supported (exec on a terminal)",
        ));
    }
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                "soft limit above the hard limit",
            ));
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                "process.oomScoreAdj",
                format!("{adj} is not in -1000..=1000"),
            ));
        }
    }
    if let Some(caps) = p.capabilities() {
        let eff = caps.effective().clone().unwrap_or_default();
        let perm = caps.permitted().clone().unwrap_or_default();
        if let Some(extra) = eff.difference(&perm).next() {
            return Err(invalid(
                "process.capabilities.effective",
                format!("{extra} is not in the permitted set"),
            ));
        }
    }
    Ok(())
}

fn check_mount(field: &str, m: &Mount) -> Result<(), SpecError> {
    container_path(&format!("{field}.destination"), m.destination())?;
    let options = m.options().as_deref().unwrap_or_default();
    no_nul(&format!("{field}.options"), options)?;
    if let Some(o) = options
        .iter()
        .find(|o| UNSUPPORTED_OPTIONS.contains(&o.as_str()))
    {
        return Err(invalid(
            format!("{field}.options"),
            format!("{o} is not supported"),
        ));
    }
    let is_bind = options.iter().any(|o| o == "bind" || o == "rbind");
    let fstype = m.typ().as_deref().unwrap_or_default();
    if fstype.is_empty() && !is_bind {
        return Err(required(&format!("{field}.type")));
    }
    if !fstype.is_empty() && !MOUNT_TYPES.contains(&fstype) {
        return Err(invalid(
            format!("{field}.type"),
            format!(
                "{fstype:?} is not supported (one of {})",
                MOUNT_TYPES.join(", ")
            ),
        ));
    }
    if is_bind || fstype == "bind" {
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| required(&format!("{field}.source")))?;
        if !source.is_absolute() {
            return Err(invalid(
                format!("{field}.source"),
                format!("{} is not an absolute path", source.display()),
            ));
        }
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(invalid(field, "id-mapped mounts are not supported"));
    }
    Ok(())
}

fn check_linux(spec: &Spec) -> Result<(), SpecError> {
    let linux = spec.linux().as_ref().ok_or_else(|| required("linux"))?;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::User | LinuxNamespaceType::Time, _) => {
                return Err(invalid(
                    field,
                    format!("{} namespaces are not supported", ns.typ()),
                ));
            }
            (
                LinuxNamespaceType::Pid | LinuxNamespaceType::Mount | LinuxNamespaceType::Cgroup,
                Some(_),
            ) => {
                return Err(invalid(
                    format!("{field}.path"),
                    format!("joining a {} namespace by path is not supported", ns.typ()),
                ));
            }
            _ => {}
        }
    }
    if linux.uid_mappings().is_some() || linux.gid_mappings().is_some() {
        return Err(invalid(
            "linux.uidMappings",
            "user namespaces are not supported",
        ));
    }
    if linux.seccomp().is_some() {
        return Err(invalid("linux.seccomp", "seccomp is not supported yet"));
    }
    if linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid("linux.sysctl", "sysctls are not supported"));
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(invalid(
            "linux.devices",
            "extra device nodes are not supported",
        ));
    }
    if linux.intel_rdt().is_some() {
        return Err(invalid("linux.intelRdt", "not supported"));
    }
    if linux.personality().is_some() {
        return Err(invalid("linux.personality", "not supported"));
    }
    if linux.time_offsets().is_some() {
        return Err(invalid(
            "linux.timeOffsets",
            "time namespaces are not supported",
        ));
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !PROPAGATIONS.contains(&p.as_str()) {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("{p:?} is not a propagation mode"),
            ));
        }
    }
    for (name, list) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, path) in list.iter().flatten().enumerate() {
            container_path(&format!("{name}[{i}]"), Path::new(path))?;
        }
    }
    if let Some(resources) = linux.resources() {
        Limits::from_spec(resources).map_err(|e| invalid("linux.resources", e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::parse;

    const GOOD: &str = r#"{"ociVersion":"1.1.0",
        "process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/bin"]},
        "root":{"path":"rootfs"},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
        "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;

    /// `GOOD` with `pointer` (a JSON pointer) set to `value`.
    fn with(pointer: &str, value: serde_json::Value) -> Result<(), SpecError> {
        let mut json: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = json.pointer_mut(parent).unwrap();
        match target {
            serde_json::Value::Array(a) => a.push(value),
            serde_json::Value::Object(o) => {
                o.insert(key.to_string(), value);
            }
            _ => panic!("{pointer}"),
        }
        check(&parse(json.to_string().as_bytes())?)
    }

    fn field_of(r: Result<(), SpecError>) -> String {
        match r {
            Err(SpecError::Invalid { field, .. }) => field,
            other => panic!("not refused by field: {other:?}"),
        }
    }

    #[test]
    fn a_plain_spec_passes() {
        check(&parse(GOOD.as_bytes()).unwrap()).unwrap();
        // runc's `spec` default (what `oci-spec` builds) runs too.
        check(&parse(serde_json::to_vec(&Spec::default()).unwrap().as_slice()).unwrap()).unwrap();
    }

    #[test]
    fn unsupported_fields_are_named() {
        use serde_json::json;
        for (pointer, value, field) in [
            ("/ociVersion", json!("2.0.0"), "ociVersion"),
            ("/process/args", json!([]), "process.args"),
            ("/process/cwd", json!("relative"), "process.cwd"),
            ("/process/env", json!(["NOEQUALS"]), "process.env[0]"),
            ("/process/terminal", json!(true), "process.terminal"),
            ("/process/oomScoreAdj", json!(5000), "process.oomScoreAdj"),
            (
                "/process/rlimits",
                json!([{"type":"RLIMIT_NOFILE","soft":10,"hard":5}]),
                "process.rlimits[0]",
            ),
            (
                "/process/capabilities",
                json!({"effective":["CAP_KILL"],"permitted":[]}),
                "process.capabilities.effective",
            ),
            (
                "/hooks",
                json!({"prestart":[{"path":"/bin/true"}]}),
                "hooks",
            ),
            (
                "/mounts/-",
                json!({"destination":"rel","type":"tmpfs","source":"tmpfs"}),
                "mounts[1].destination",
            ),
            (
                "/mounts/-",
                json!({"destination":"/x/../y","type":"tmpfs"}),
                "mounts[1].destination",
            ),
            (
                "/mounts/-",
                json!({"destination":"/x","type":"bind","source":"rel","options":["rbind"]}),
                "mounts[1].source",
            ),
            (
                "/mounts/-",
                json!({"destination":"/x","type":"tmpfs","options":["tmpcopyup"]}),
                "mounts[1].options",
            ),
            (
                "/mounts/-",
                json!({"destination":"/x","type":"nfs","source":"server:/export"}),
                "mounts[1].type",
            ),
            (
                "/linux/namespaces/-",
                json!({"type":"user"}),
                "linux.namespaces[2]",
            ),
            (
                "/linux/namespaces/-",
                json!({"type":"pid","path":"/proc/1/ns/pid"}),
                "linux.namespaces[2].path",
            ),
            (
                "/linux/seccomp",
                json!({"defaultAction":"SCMP_ACT_ALLOW"}),
                "linux.seccomp",
            ),
            (
                "/linux/sysctl",
                json!({"net.ipv4.ip_forward":"1"}),
                "linux.sysctl",
            ),
            (
                "/linux/rootfsPropagation",
                json!("sideways"),
                "linux.rootfsPropagation",
            ),
            (
                "/linux/maskedPaths",
                json!(["proc/kcore"]),
                "linux.maskedPaths[0]",
            ),
            (
                "/linux/resources",
                json!({"cpu":{"shares":1}}),
                "linux.resources",
            ),
        ] {
            assert_eq!(
                field_of(with(pointer, value.clone())),
                field,
                "{pointer} = {value}"
            );
        }
        let mut no_root: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        no_root.as_object_mut().unwrap().remove("root");
        assert_eq!(
            field_of(check(&parse(no_root.to_string().as_bytes()).unwrap())),
            "root"
        );
    }
}
